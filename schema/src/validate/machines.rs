//! State machines: states, transitions, and the messages each state admits.

use std::collections::{HashMap, HashSet};

use super::Checker;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::model::{Src, StateMachine, Trigger, TypeDef};

pub(crate) fn check(c: &mut Checker) {
    let cat = c.cat;
    c.unique(
        "state machine",
        cat.state_machines
            .iter()
            .map(|m| (m.name.as_str(), m.src.at("name"))),
    );
    for machine in &cat.state_machines {
        c.identifier("state machine", &machine.name, &machine.src.at("name"));
        if let Some(t) = cat.types.iter().find(|t| t.name() == machine.name) {
            c.push(
                Diagnostic::error("ipcspec::duplicate-name", format!("state machine `{}` has the name of a type", machine.name))
                    .at(&machine.src.at("name"), "")
                    .at(&t.src().at("name"), "the type")
                    .help("a state machine is generated as an enum of its states, so its name must differ from every type"),
            );
        }
        c.roles(&machine.role, &machine.src.at("role"));
        check_machine(c, machine);
        if let Some(name) = &machine.state_type {
            check_state_type(c, machine, name);
        }
    }
}

/// A machine's `stateType` names a string enum whose values are exactly its states'
/// values, so that the generated conversions between the two are total both ways.
fn check_state_type(c: &mut Checker, machine: &StateMachine, name: &str) {
    let at = machine.src.at("stateType");
    let Some(ty) = c.cat.types.iter().find(|t| t.name() == name) else {
        let hint = did_you_mean(name, c.cat.types.iter().map(|t| t.name()));
        c.push(
            Diagnostic::error(
                "ipcspec::unknown-type",
                format!(
                    "`{}` names no type `{name}` as its state type{hint}",
                    machine.name
                ),
            )
            .at(&at, "")
            .help("name a string enum whose values are the machine's states"),
        );
        return;
    };
    let TypeDef::Enum(def) = ty else {
        c.push(
            Diagnostic::error(
                "ipcspec::invalid-type",
                format!(
                    "state type `{name}` of `{}` is not a string enum",
                    machine.name
                ),
            )
            .at(&at, "")
            .at(&ty.src().at("kind"), "declared here")
            .help("a machine's state type is a string enum with one value per state"),
        );
        return;
    };
    let state_values: Vec<&str> = machine
        .states
        .iter()
        .map(|s| s.value.as_deref().unwrap_or(&s.name))
        .collect();
    let type_values: Vec<&str> = def.values.iter().map(|v| v.wire()).collect();
    for (i, value) in state_values.iter().enumerate() {
        if !type_values.contains(value) {
            c.push(
                Diagnostic::error(
                    "ipcspec::state-type",
                    format!(
                        "state `{}` of `{}` has the value `{value}`, which `{name}` does not have",
                        machine.states[i].name, machine.name
                    ),
                )
                .at(&machine.src.at("states").at(i).at("name"), "")
                .at(&at, "the state type")
                .help(format!(
                    "add `{value}` to `{name}`'s values, or give the state one of: {}",
                    type_values.join(", ")
                )),
            );
        }
    }
    for (i, value) in type_values.iter().enumerate() {
        if !state_values.contains(value) {
            c.push(
                Diagnostic::error(
                    "ipcspec::state-type",
                    format!(
                        "`{name}` has the value `{value}`, which no state of `{}` has",
                        machine.name
                    ),
                )
                .at(&ty.src().at("values").at(i).at("name"), "")
                .at(&at, "the state type")
                .help(format!(
                    "add a state with the value `{value}` to `{}`, or remove the value from `{name}`",
                    machine.name
                )),
            );
        }
    }
}

fn check_machine(c: &mut Checker, machine: &StateMachine) {
    let src = &machine.src;
    if machine.states.is_empty() {
        c.push(
            Diagnostic::error(
                "ipcspec::invalid-value",
                format!("state machine `{}` has no states", machine.name),
            )
            .at(&src.at("states"), "")
            .help("declare at least the initial state"),
        );
        return;
    }
    c.unique(
        "state",
        machine
            .states
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.as_str(), src.at("states").at(i).at("name"))),
    );
    let mut values: HashMap<&str, usize> = HashMap::new();
    let index: HashMap<&str, usize> = machine
        .states
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    for (i, state) in machine.states.iter().enumerate() {
        let at = src.at("states").at(i);
        c.identifier("state", &state.name, &at.at("name"));
        let value = state.value.as_deref().unwrap_or(&state.name);
        if let Some(first) = values.insert(value, i) {
            c.push(
                Diagnostic::error(
                    "ipcspec::duplicate-code",
                    format!(
                        "states `{}` and `{}` share the value `{value}`",
                        machine.states[first].name, state.name
                    ),
                )
                .at(&at, "")
                .help("each state needs its own value"),
            );
        }
        for (key, names, sends) in [
            ("sends", &state.sends, true),
            ("receives", &state.receives, false),
        ] {
            for (j, name) in names.iter().enumerate() {
                message_for_role(c, machine, name, sends, &at.at(key).at(j));
            }
        }
    }
    let state_ref = |c: &mut Checker, name: &str, at: &Src| {
        if !index.contains_key(name) {
            let hint = did_you_mean(name, machine.states.iter().map(|s| s.name.as_str()));
            c.push(
                Diagnostic::error(
                    "ipcspec::unknown-state",
                    format!("`{}` has no state `{name}`{hint}", machine.name),
                )
                .at(at, "")
                .help(format!(
                    "the states are: {}",
                    machine
                        .states
                        .iter()
                        .map(|s| s.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
            false
        } else {
            true
        }
    };
    state_ref(c, &machine.initial, &src.at("initial"));
    let mut edges: HashMap<&str, Vec<&str>> = HashMap::new();
    for (i, transition) in machine.transitions.iter().enumerate() {
        let at = src.at("transitions").at(i);
        let from_ok = state_ref(c, &transition.from, &at.at("from"));
        state_ref(c, &transition.to, &at.at("to"));
        if from_ok {
            if let Some(state) = machine.states.iter().find(|s| s.name == transition.from) {
                if state.terminal {
                    c.push(
                        Diagnostic::error(
                            "ipcspec::terminal-state",
                            format!("terminal state `{}` has an outgoing transition", state.name),
                        )
                        .at(&at.at("from"), "")
                        .help("remove the transition, or drop `terminal` from the state"),
                    );
                }
            }
        }
        edges
            .entry(transition.from.as_str())
            .or_default()
            .push(transition.to.as_str());
        match &transition.on {
            Trigger::Send(name) => {
                message_for_role(c, machine, name, true, &at.at("on").at("send"))
            }
            Trigger::Receive(name) => {
                message_for_role(c, machine, name, false, &at.at("on").at("receive"))
            }
            Trigger::Event(name) => {
                if !super::is_identifier(name) {
                    c.push(
                        Diagnostic::error(
                            "ipcspec::invalid-name",
                            format!("event name `{name}` is not an identifier"),
                        )
                        .at(&at.at("on").at("event"), "")
                        .help("name local events like `timeout`, `closed`, `exit`"),
                    );
                }
            }
        }
    }
    // Reachability from the initial state: an unreachable state is dead documentation.
    let mut reached: HashSet<&str> = HashSet::from([machine.initial.as_str()]);
    let mut frontier = vec![machine.initial.as_str()];
    while let Some(state) = frontier.pop() {
        for next in edges.get(state).into_iter().flatten() {
            if reached.insert(next) {
                frontier.push(next);
            }
        }
    }
    for (i, state) in machine.states.iter().enumerate() {
        if !reached.contains(state.name.as_str()) && index.contains_key(machine.initial.as_str()) {
            c.push(
                Diagnostic::warning(
                    "ipcspec::unreachable-state",
                    format!(
                        "state `{}` cannot be reached from `{}`",
                        state.name, machine.initial
                    ),
                )
                .at(&src.at("states").at(i).at("name"), "")
                .help("add a transition into it, or remove it"),
            );
        }
    }
}

/// Checks that `name` is a message that the machine's role sends (or receives).
fn message_for_role(c: &mut Checker, machine: &StateMachine, name: &str, sends: bool, at: &Src) {
    let Some(message) = c.message(name, at) else {
        return;
    };
    let roles = if sends { &message.from } else { &message.to };
    let known = |role: &&String| c.cat.roles.iter().any(|r| &r.name == *role);
    let missing: Vec<&String> = machine
        .role
        .names()
        .iter()
        .filter(known)
        .filter(|role| !roles.contains(role))
        .collect();
    for role in missing {
        let verb = if sends { "send" } else { "receive" };
        let key = if sends { "from" } else { "to" };
        c.push(
            Diagnostic::error(
                "ipcspec::message-role",
                format!("role `{role}` does not {verb} `{name}`"),
            )
            .at(at, format!("in state machine `{}`", machine.name))
            .at(
                &message.src.at(key),
                format!("`{name}` lists these roles in `{key}`"),
            )
            .help(format!(
                "add `{role}` to the message's `{key}`, or name another message"
            )),
        );
    }
}
