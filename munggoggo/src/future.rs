//! [`BoxFuture`]: the boxed future of the object-safe traits (the bus, the
//! agent), in a module of its own so that every layer can name it without
//! importing the layers above it.

use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future, as the generated code and the bus traits return them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
