//! Runnable examples for flashsale; see the `examples` in this package.
