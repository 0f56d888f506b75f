//! State machines: the transition table and a mermaid state diagram.

use super::Page;
use super::text::{list_or_none, mermaid_state, mermaid_text, trigger_text};
use crate::ir::{Machine, Trigger, names::anchor};

impl Page<'_> {
    pub(super) fn machines(&mut self) {
        let m = self.m;
        if m.machines.is_empty() {
            return;
        }
        self.heading(2, "machines", "State machines");
        for mach in &m.machines {
            self.machine(mach);
        }
    }

    pub(super) fn machine(&mut self, mach: &Machine) {
        self.heading(3, &mach.anchor, &format!("`{}`", mach.name));
        self.para(&format!(
            "Held by {}. Initial state: `{}`.",
            Self::roles_text(&mach.roles),
            mach.initial
        ));
        self.para(&mach.doc);
        if let Some(td) = mach
            .state_type
            .as_ref()
            .and_then(|s| self.m.types.get(s.ty.0))
        {
            self.para(&format!(
                "Messages carry this state as {}: each state's value is one of its values.",
                self.type_link(td)
            ));
        }
        let id = |name: &str| mermaid_state(mach, name);
        let mut lines = vec!["stateDiagram-v2".to_owned()];
        for (i, s) in mach.states.iter().enumerate() {
            if id(&s.name) != s.name {
                lines.push(format!("    state \"{}\" as s{i}", mermaid_text(&s.name)));
            }
        }
        lines.push(format!("    [*] --> {}", id(&mach.initial)));
        for t in &mach.transitions {
            lines.push(format!(
                "    {} --> {}: {}",
                id(&t.from),
                id(&t.to),
                mermaid_text(&trigger_text(&t.on))
            ));
        }
        for s in mach.states.iter().filter(|s| s.terminal) {
            lines.push(format!("    {} --> [*]", id(&s.name)));
        }
        self.line("```mermaid");
        for l in lines {
            self.line(&l);
        }
        self.line("```");
        self.blank();

        self.line("States:");
        let mut rows = Vec::new();
        for s in &mach.states {
            let a = self.fresh(&format!("{}-{}", mach.anchor, anchor(&["state", &s.name])));
            let sends: Vec<String> = s.sends.iter().map(|x| self.msg_link(x)).collect();
            let receives: Vec<String> = s.receives.iter().map(|x| self.msg_link(x)).collect();
            let mut flags = Vec::new();
            if s.name == mach.initial {
                flags.push("initial");
            }
            if s.terminal {
                flags.push("terminal");
            }
            rows.push(vec![
                format!("<a id=\"{a}\"></a>`{}`", s.name),
                format!("`{}`", s.value),
                if flags.is_empty() {
                    "—".into()
                } else {
                    flags.join(", ")
                },
                list_or_none(&sends),
                list_or_none(&receives),
                s.doc.clone(),
            ]);
        }
        self.table(
            &["State", "Value", "Kind", "Sends", "Receives", "Description"],
            &rows,
        );

        self.line("Transitions:");
        let rows: Vec<Vec<String>> = mach
            .transitions
            .iter()
            .map(|t| {
                let on = match &t.on {
                    Trigger::Send(x) => format!("send {}", self.msg_link(x)),
                    Trigger::Receive(x) => format!("receive {}", self.msg_link(x)),
                    Trigger::Event(e) => format!("event `{e}`"),
                };
                vec![
                    format!("`{}`", t.from),
                    format!("`{}`", t.to),
                    on,
                    t.doc.clone().unwrap_or_default(),
                ]
            })
            .collect();
        self.table(&["From", "To", "Trigger", "Description"], &rows);
    }
}
