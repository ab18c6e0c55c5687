//! Kafka adapter for flashsale-core. Empty until its issue lands.
