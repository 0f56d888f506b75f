//! Operator commands: what IT asks the service to do (`migration-service push ...`).
//!
//! A command is queued durably in the store by the `push` subcommand, whether or not the
//! service runs, and the running service applies pending commands in order, each exactly
//! once (the command's number is its message id in the journal). Messages a command
//! produces for a user go to that user's outbox, so an agent that is offline gets them
//! when it connects; only SHUTDOWN_REQUEST, which concerns running agents, is sent to
//! the connected ones and not kept.

use std::time::Duration;

use ipcspec_generated::migration::{
    AgentSettings, EscalationLevel, EscalationReason, ShutdownReason,
};
use serde::{Deserialize, Serialize};

/// One operator command, stored as JSON in the `commands` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Command {
    /// Ask the user to back up before `deadline` (BACKUP_REQUEST, reason
    /// MIGRATION_SCHEDULED): users in NOT_STARTED move to BACKUP_REQUESTED.
    RequestBackup {
        /// The deadline.
        #[serde(with = "time::serde::rfc3339")]
        deadline: time::OffsetDateTime,
        /// How many delays the user may ask for.
        delays_allowed: u32,
        /// The longest delay one request may add, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_delay_ms: Option<u64>,
        /// Text shown to the user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Remind, warn or tell the user of an escalation (ESCALATION_NOTICE).
    Notify {
        /// The notice's urgency.
        level: EscalationLevel,
        /// Why it is sent.
        reason: EscalationReason,
        /// Text shown to the user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Answer the user's pending DELAY_REQUEST (STATUS_UPDATE with `delayDecision`, then
    /// BACKUP_REQUEST DEADLINE_EXTENDED when granted).
    DecideDelay {
        /// Whether the delay is granted (to the deadline the user asked for).
        granted: bool,
        /// Why, shown to the user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Change the agents' settings (CONFIGURATION_UPDATE to every agent; the command's
    /// number becomes the `configVersion`).
    Configure {
        /// The full settings.
        settings: AgentSettings,
    },
    /// Ask running agents to exit (SHUTDOWN_REQUEST); the service closes their
    /// connections when the grace period ends.
    Shutdown {
        /// Why.
        reason: ShutdownReason,
        /// How long the agent has, in milliseconds.
        grace_period_ms: u64,
        /// Text shown to the user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

impl Command {
    /// The command's kind as the `commands` table records it.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Command::RequestBackup { .. } => "request-backup",
            Command::Notify { .. } => "notify",
            Command::DecideDelay { .. } => "decide-delay",
            Command::Configure { .. } => "configure",
            Command::Shutdown { .. } => "shutdown",
        }
    }

    /// The grace period of a shutdown.
    #[must_use]
    pub fn grace_period(&self) -> Option<Duration> {
        match self {
            Command::Shutdown {
                grace_period_ms, ..
            } => Some(Duration::from_millis(*grace_period_ms)),
            _ => None,
        }
    }
}
