//! Shared by the test files: reads the topic back as the backend would.

use async_trait::async_trait;
use flashsale_core::TxMessage;
use flashsale_core::testkit::SinkProbe;
use rdkafka::Message;
use rdkafka::consumer::StreamConsumer;

/// Yields each readable message on the topic.
pub(crate) struct TopicProbe(pub(crate) StreamConsumer);

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
