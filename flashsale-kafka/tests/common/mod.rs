//! Shared by the test files: reads the topic back as the backend would.

use async_trait::async_trait;
use flashsale_core::TxMessage;
use flashsale_core::testkit::SinkProbe;
use flashsale_kafka::TxConsumer;
use rdkafka::Message;

/// Yields each readable message on the topic.
#[allow(dead_code, reason = "not every test file reads the topic")]
pub(crate) struct TopicProbe(pub(crate) TxConsumer);

#[async_trait]
impl SinkProbe for TopicProbe {
    async fn next(&mut self) -> Option<TxMessage> {
        loop {
            let m = self.0.recv().await.ok()?;
            if let Some(Ok(message)) = m.payload().map(serde_json::from_slice::<TxMessage>) {
                return Some(message);
            }
        }
    }
}

/// The test broker's address.
#[allow(dead_code, reason = "not every test file talks to the real broker")]
pub(crate) fn brokers() -> String {
    std::env::var("FLASHSALE_KAFKA_BROKERS").expect(
        "FLASHSALE_KAFKA_BROKERS names the test broker; scripts/test.sh starts one and sets it",
    )
}
