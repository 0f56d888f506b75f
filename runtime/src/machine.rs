//! What generated state machines share: triggers, the transition table as data, the
//! error for a transition the catalogue does not declare, and the transition log.
//!
//! A generated machine (`UserMigration`) moves only through its `next`/`next_to`, which
//! accept exactly the catalogue's transitions and answer anything else with an
//! [`InvalidTransition`] naming what the state accepts. Every transition taken is
//! reported as a `tracing` debug event and, when the environment variable
//! [`TRANSITION_LOG_ENV`] names a file, appended to it as one line
//! ([`MachineTable::log_line`]): the tests of a reference service set it on the processes
//! they start and compare the lines with the catalogue's transitions.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

/// What moves a generated state machine from one state to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Trigger<'a> {
    /// The holder sent the message with this wire name.
    Send(&'a str),
    /// The holder received the message with this wire name.
    Receive(&'a str),
    /// A local event (a timer, a decision) named in the catalogue.
    Event(&'a str),
}

impl fmt::Display for Trigger<'_> {
    /// `send BACKUP_REQUEST`, `receive ACKNOWLEDGMENT`, `event timeout`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::Send(name) => write!(f, "send {name}"),
            Trigger::Receive(name) => write!(f, "receive {name}"),
            Trigger::Event(name) => write!(f, "event {name}"),
        }
    }
}

/// One transition as the catalogue declares it (state names, not values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Transition {
    /// Source state.
    pub from: &'static str,
    /// What causes it.
    pub trigger: Trigger<'static>,
    /// Target state.
    pub to: &'static str,
}

/// A generated machine as data: what tests and tools read without knowing its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineTable {
    /// The machine's catalogue name (`UserMigration`).
    pub name: &'static str,
    /// The initial state's name.
    pub initial: &'static str,
    /// Every state's name, in catalogue order.
    pub states: &'static [&'static str],
    /// Every declared transition, in catalogue order.
    pub transitions: &'static [Transition],
}

impl MachineTable {
    /// The line the transition log holds for `transitions[index]`:
    /// `UserMigration: NOT_STARTED --send BACKUP_REQUEST--> BACKUP_REQUESTED`.
    pub fn log_line(&self, index: usize) -> String {
        match self.transitions.get(index) {
            Some(t) => format!("{}: {} --{}--> {}", self.name, t.from, t.trigger, t.to),
            None => format!("{}: no transition #{index}", self.name),
        }
    }

    /// The log line of every declared transition, in catalogue order.
    pub fn log_lines(&self) -> Vec<String> {
        (0..self.transitions.len())
            .map(|i| self.log_line(i))
            .collect()
    }

    /// The triggers with a transition out of `state`, in catalogue order, each once.
    pub fn accepted(&self, state: &str) -> Vec<Trigger<'static>> {
        let mut out: Vec<Trigger<'static>> = Vec::new();
        for t in self.transitions.iter().filter(|t| t.from == state) {
            if !out.contains(&t.trigger) {
                out.push(t.trigger);
            }
        }
        out
    }

    /// The targets `trigger` may lead to from `state`, in catalogue order.
    pub fn targets(&self, state: &str, trigger: Trigger<'_>) -> Vec<&'static str> {
        self.transitions
            .iter()
            .filter(|t| t.from == state && t.trigger == trigger)
            .map(|t| t.to)
            .collect()
    }
}

/// A transition the catalogue does not declare, refused by a generated machine's
/// `next`/`next_to`: the machine, its state, the trigger, and (in `Display`) what the
/// state accepts instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTransition {
    /// The machine.
    pub machine: &'static MachineTable,
    /// The state's name.
    pub state: &'static str,
    /// The trigger that was refused.
    pub trigger: Trigger<'static>,
    /// The target asked for with `next_to`, when one was.
    pub requested: Option<&'static str>,
}

impl InvalidTransition {
    /// The triggers the state accepts.
    pub fn accepted(&self) -> Vec<Trigger<'static>> {
        self.machine.accepted(self.state)
    }

    /// The states the trigger leads to from this state: none when the trigger is not
    /// accepted here, several when the catalogue lets the holder choose (`next_to`).
    pub fn targets(&self) -> Vec<&'static str> {
        self.machine.targets(self.state, self.trigger)
    }
}

impl fmt::Display for InvalidTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let machine = self.machine.name;
        let (state, trigger) = (self.state, self.trigger);
        let targets = self.targets();
        match (self.requested, targets.as_slice()) {
            (_, []) => {
                let accepted = self.accepted();
                write!(f, "{machine} in state {state} does not accept {trigger}; ")?;
                if accepted.is_empty() {
                    write!(f, "it accepts nothing")
                } else {
                    let list: Vec<String> = accepted.iter().map(ToString::to_string).collect();
                    write!(f, "it accepts {}", list.join(", "))
                }
            }
            (Some(to), targets) => write!(
                f,
                "{machine} declares no transition from {state} to {to} on {trigger}; it leads to {}",
                targets.join(", ")
            ),
            (None, targets) => write!(
                f,
                "{machine} in state {state} leads on {trigger} to one of {}: the holder names the target (next_to)",
                targets.join(", ")
            ),
        }
    }
}

impl std::error::Error for InvalidTransition {}

/// The environment variable naming the file every process appends its taken
/// transitions to (one [`MachineTable::log_line`] per line). Unset, nothing is written.
pub const TRANSITION_LOG_ENV: &str = "IPCSPEC_TRANSITION_LOG";

/// The transition log of this process, opened on first use.
static LOG: OnceLock<Option<Mutex<File>>> = OnceLock::new();

fn open_log() -> Option<Mutex<File>> {
    let path = std::env::var_os(TRANSITION_LOG_ENV)?;
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        Ok(file) => Some(Mutex::new(file)),
        Err(error) => {
            tracing::warn!(path = %path.to_string_lossy(), %error, "cannot open the transition log");
            None
        }
    }
}

/// Reports that `machine` took `transitions[index]`. Generated `next`/`next_to` call it
/// for every transition they allow; services never call it directly.
pub fn record(machine: &MachineTable, index: usize) {
    if let Some(t) = machine.transitions.get(index) {
        tracing::debug!(machine = machine.name, from = t.from, trigger = %t.trigger, to = t.to, "transition");
    }
    let Some(log) = LOG.get_or_init(open_log) else {
        return;
    };
    // One write of a whole line to a file opened for appending: lines from several
    // processes sharing the log do not interleave.
    let line = machine.log_line(index) + "\n";
    let written = match log.lock() {
        Ok(mut file) => file.write_all(line.as_bytes()),
        Err(poisoned) => poisoned.into_inner().write_all(line.as_bytes()),
    };
    if let Err(error) = written {
        tracing::warn!(%error, "cannot write the transition log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static TABLE: MachineTable = MachineTable {
        name: "Door",
        initial: "SHUT",
        states: &["SHUT", "OPEN", "GONE"],
        transitions: &[
            Transition {
                from: "SHUT",
                trigger: Trigger::Event("push"),
                to: "OPEN",
            },
            Transition {
                from: "OPEN",
                trigger: Trigger::Receive("CLOSE"),
                to: "SHUT",
            },
            Transition {
                from: "OPEN",
                trigger: Trigger::Receive("CLOSE"),
                to: "GONE",
            },
        ],
    };

    #[test]
    fn an_undeclared_trigger_names_what_the_state_accepts() {
        let error = InvalidTransition {
            machine: &TABLE,
            state: "SHUT",
            trigger: Trigger::Send("OPEN"),
            requested: None,
        };
        assert_eq!(
            error.to_string(),
            "Door in state SHUT does not accept send OPEN; it accepts event push"
        );
        let terminal = InvalidTransition {
            state: "GONE",
            ..error
        };
        assert_eq!(
            terminal.to_string(),
            "Door in state GONE does not accept send OPEN; it accepts nothing"
        );
    }

    #[test]
    fn a_choice_and_a_wrong_target_are_explained() {
        let choice = InvalidTransition {
            machine: &TABLE,
            state: "OPEN",
            trigger: Trigger::Receive("CLOSE"),
            requested: None,
        };
        assert_eq!(choice.targets(), ["SHUT", "GONE"]);
        assert!(choice.to_string().contains("one of SHUT, GONE"));
        let wrong = InvalidTransition {
            requested: Some("OPEN"),
            ..choice
        };
        assert!(
            wrong
                .to_string()
                .contains("no transition from OPEN to OPEN on receive CLOSE")
        );
    }

    #[test]
    fn log_lines_follow_the_table() {
        assert_eq!(
            TABLE.log_lines(),
            [
                "Door: SHUT --event push--> OPEN",
                "Door: OPEN --receive CLOSE--> SHUT",
                "Door: OPEN --receive CLOSE--> GONE",
            ]
        );
        assert_eq!(
            TABLE.accepted("OPEN"),
            [Trigger::Receive("CLOSE")],
            "a trigger with two targets is accepted once"
        );
    }
}
