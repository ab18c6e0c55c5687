-- POST /buy with a fresh buyer name every request, as the reference's k6
-- script does (names carry WRK_RUN, so runs against the same sale differ).
-- Counts the answers by status.
local run = os.getenv("WRK_RUN") or tostring(os.time())
local threads = {}
function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

local n = 0
function request()
  n = n + 1
  local body = string.format('{"buyerName":"w%s-%d-%d"}', run, id, n)
  return wrk.format("POST", "/buy", { ["Content-Type"] = "application/json" }, body)
end

local non2xx = 0
function response(status, headers, body)
  if status ~= 200 then non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
  io.write(string.format("requests %d, errors %d\n", summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout))
end
