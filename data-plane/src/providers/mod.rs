//! Provider adapters: pure functions that shape requests and read responses
//! in one provider's wire format. The network code lives once, in `forward`.

pub mod openai;
