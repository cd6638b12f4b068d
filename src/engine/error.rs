//! The error a step of the pass returns: the database failed, or something that should not
//! happen did. Either way the pass logs it, goes on with the other steps, and tries again next
//! pass.

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    // The message carries the cause; it is not also a source, so a chain prints it once.
    #[error("database error: {0}")]
    Db(sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl From<sqlx::Error> for StepError {
    fn from(e: sqlx::Error) -> Self {
        StepError::Db(e)
    }
}
