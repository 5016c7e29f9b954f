//! GitLab REST API v4: a blocking client (auth, pagination, retries, rate limits,
//! time budgets) and serde models of the responses RunnerIQ reads.
//!
//! Everything above this module works on [`models`] structs, so the same analysis
//! runs on live API data, snapshots and the demo set.

pub use runneriq_core::gitlab::{bounded, models, test_report};

pub mod client;
pub mod env;
pub mod error;

pub use client::{Client, ClientConfig, Page, Token, project_ref};
pub use env::{api_client, client_config, project_from_env, url_from_env};
pub use error::{ApiError, ApiErrorKind, TokenKind};
