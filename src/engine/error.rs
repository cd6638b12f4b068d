//! The error a step of the pass returns: the database failed, or something that should not
//! happen did. Either way the pass logs it, goes on with the other steps, and tries again next
//! pass.

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}
