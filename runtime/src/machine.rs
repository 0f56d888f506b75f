//! State machine triggers.

/// What moves a generated state machine from one state to the next (`State::next`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger<'a> {
    /// The holder sent the message with this wire name.
    Send(&'a str),
    /// The holder received the message with this wire name.
    Receive(&'a str),
    /// A local event (a timer, a decision) named in the catalogue.
    Event(&'a str),
}
