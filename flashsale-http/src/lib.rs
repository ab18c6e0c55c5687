//! HTTP and Socket.IO adapter for flashsale-core. Empty until its issue lands.
