// Connects like the reference's browser client (socket.io-client v4,
// websocket only), optionally joins rooms, and prints every event it gets
// as one JSON line: {"event": name, "data": payload}. Exits when stdin
// closes, so the Rust test that spawned it controls its life.
//
//   node listen.mjs <url> [join-json]
import { io } from "socket.io-client";

const [url, join] = process.argv.slice(2);
const print = (event, data) => console.log(JSON.stringify({ event, data }));
const socket = io(url, { transports: ["websocket"], reconnection: false });

socket.on("connect", async () => {
  if (join) {
    const rooms = await socket.emitWithAck("join", JSON.parse(join));
    print("joined", rooms);
  } else {
    print("joined", []);
  }
});
socket.onAny((event, data) => print(event, data));
socket.on("connect_error", (e) => {
  print("connect_error", String(e));
  process.exit(1);
});
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
