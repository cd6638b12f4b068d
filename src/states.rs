//! The states a case, stage, task, SLA clock, allocation, inbox row and outbox row can be in, as
//! types. The database keeps them as text (each column has a CHECK constraint listing the same
//! values); rows decode into these types on both backends, so the engine compares and matches
//! states, never strings.

use std::fmt;
use std::str::FromStr;

use sqlx::error::BoxDynError;
use sqlx::postgres::{PgTypeInfo, PgValueRef, Postgres};
use sqlx::sqlite::{Sqlite, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Type};

macro_rules! state {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in the order of the column's CHECK constraint.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as the database stores it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "{} is not a {}; expected one of: {}",
                        crate::text::quote(other),
                        stringify!($name),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl Type<Sqlite> for $name {
            fn type_info() -> SqliteTypeInfo {
                <str as Type<Sqlite>>::type_info()
            }
            fn compatible(ty: &SqliteTypeInfo) -> bool {
                <str as Type<Sqlite>>::compatible(ty)
            }
        }

        impl<'r> Decode<'r, Sqlite> for $name {
            fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&str as Decode<'r, Sqlite>>::decode(value)?.parse()?)
            }
        }

        impl Type<Postgres> for $name {
            fn type_info() -> PgTypeInfo {
                <str as Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <str as Type<Postgres>>::compatible(ty)
            }
        }

        impl<'r> Decode<'r, Postgres> for $name {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                Ok(<&str as Decode<'r, Postgres>>::decode(value)?.parse()?)
            }
        }

    };
}

state!(
    /// A case's status (`cases.status`).
    CaseStatus {
        Open => "open",
        AwaitingAdvance => "awaiting_advance",
        Completed => "completed",
        Closed => "closed",
    }
);

state!(
    /// Whether a case has its owner (`cases.allocation`).
    Allocation {
        Pending => "pending",
        Allocated => "allocated",
        Needed => "needed",
    }
);

state!(
    /// A stage entry's status (`stages.status`).
    StageStatus {
        Open => "open",
        Completed => "completed",
        Diverted => "diverted",
        Closed => "closed",
    }
);

state!(
    /// A task's status (`tasks.status`).
    TaskStatus {
        Waiting => "waiting",
        Active => "active",
        OnHold => "on_hold",
        Completed => "completed",
        Skipped => "skipped",
        Cancelled => "cancelled",
    }
);

state!(
    /// Where a task's or stage's SLA clock stands (`sla_state`).
    SlaState {
        None => "none",
        OnTrack => "on_track",
        Amber => "amber",
        Exceeded => "exceeded",
        Stopped => "stopped",
    }
);

state!(
    /// An inbox row's status (`inbox.status`).
    InboxStatus {
        Pending => "pending",
        Accepted => "accepted",
        Rejected => "rejected",
        Duplicate => "duplicate",
    }
);

state!(
    /// An outbox row's status (`outbox.status`).
    OutboxStatus {
        Pending => "pending",
        Claimed => "claimed",
        Sent => "sent",
        Dead => "dead",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_reads_back_what_it_writes_and_refuses_anything_else() {
        for s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>(), Ok(*s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for s in SlaState::ALL {
            assert_eq!(s.as_str().parse::<SlaState>(), Ok(*s));
        }
        let err = "paused".parse::<TaskStatus>().unwrap_err();
        assert!(err.contains("\"paused\" is not a TaskStatus"), "{err}");
    }
}
