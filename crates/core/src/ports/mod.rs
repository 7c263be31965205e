//! The ports: what the core needs from the outside world. Adapters implement them
//! (`xdm-x`, `xdm-amazon-connect`, `xdm-store`); tests implement them with in-memory fakes.

mod clock;
mod connect_api;
mod shared_store;
mod store;
mod token_refresher;
mod x_api;

pub use crate::inbound::ChatKeyChange;
pub use crate::records::{Expect, Record};
pub use clock::{Clock, SystemClock};
pub use connect_api::{
    ChatEvent, ChatMessage, ConnectApi, ConnectError, CustomerProfile, MessageContentType,
    ProfileChange, StartChat, StartedChat,
};
pub use store::{SessionInsert, Store, StoreError};
pub use token_refresher::{RefreshError, TokenGrant, TokenRefresher};
pub use x_api::{
    ChatFileRequest, ChatRequest, DmRequest, OpenedChat, SentChat, SentDm, SentDmRecord, XApi,
    XError,
};
