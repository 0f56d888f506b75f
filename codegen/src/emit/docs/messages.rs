//! Messages, grouped by direction, and their sequence diagrams.

use super::text::{code, mermaid_text, summary};
use super::{Page, sequence_anchor};
use crate::emit::examples;
use crate::ir::{Message, Trigger, names::anchor};

impl Page<'_> {
    pub(super) fn messages(&mut self) -> anyhow::Result<()> {
        let m = self.m;
        self.heading(2, "messages", "Messages");
        self.para("Messages are grouped by direction. Each example is a complete envelope that the JSON Schema accepts.");
        let mut groups: Vec<(&[String], &[String], Vec<&Message>)> = Vec::new();
        for msg in &m.messages {
            match groups
                .iter_mut()
                .find(|(f, t, _)| *f == msg.from.as_slice() && *t == msg.to.as_slice())
            {
                Some((_, _, list)) => list.push(msg),
                None => groups.push((&msg.from, &msg.to, vec![msg])),
            }
        }
        for (from, to, list) in groups {
            let id = self.fresh(&format!(
                "messages-{}-to-{}",
                anchor(&from.iter().map(String::as_str).collect::<Vec<_>>()),
                anchor(&to.iter().map(String::as_str).collect::<Vec<_>>())
            ));
            self.heading(
                3,
                &id,
                &format!("{} → {}", Self::roles_text(from), Self::roles_text(to)),
            );
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|msg| {
                    vec![
                        self.msg_link(&msg.name),
                        msg.code.map_or("—".into(), code),
                        msg.payload.as_ref().map_or("none".into(), |t| self.ty(t)),
                        msg.reply.as_ref().map_or("—".into(), |r| self.msg_link(r)),
                        if msg.acknowledged {
                            "yes".into()
                        } else {
                            "no".into()
                        },
                        summary(&msg.doc),
                    ]
                })
                .collect();
            self.table(
                &[
                    "Message",
                    "Code",
                    "Payload",
                    "Reply",
                    "Acknowledged",
                    "Summary",
                ],
                &rows,
            );
            for msg in list {
                self.message(msg)?;
            }
        }
        Ok(())
    }

    pub(super) fn message(&mut self, msg: &Message) -> anyhow::Result<()> {
        let m = self.m;
        self.heading(4, &msg.anchor, &format!("`{}`", msg.name));
        self.para(&msg.doc);
        let mut facts = vec![format!(
            "**Direction:** {} → {}",
            Self::roles_text(&msg.from),
            Self::roles_text(&msg.to)
        )];
        if !msg.channels.is_empty() {
            let chans: Vec<String> = msg.channels.iter().map(|c| format!("`{c}`")).collect();
            facts.push(format!("**Channels:** {}", chans.join(", ")));
        }
        if let Some(c) = msg.code {
            facts.push(format!("**Code:** {}", code(c)));
        }
        if let (Some(field), Some(flags)) = (&m.wire.envelope.flags, m.header_flags(msg)) {
            facts.push(format!(
                "**Header `{field}`:** exactly `{flags:#010x}` ([Envelope](#wire-envelope))"
            ));
        }
        facts.push(format!(
            "**Payload:** {}",
            msg.payload
                .as_ref()
                .map_or("none (`{}`)".to_owned(), |t| self.ty(t))
        ));
        let seq = sequence_anchor(msg);
        if let Some(r) = &msg.reply {
            facts.push(format!(
                "**Reply:** {} ([sequence](#{seq}))",
                self.msg_link(r)
            ));
        }
        let answers: Vec<String> = m
            .messages
            .iter()
            .filter(|x| x.reply.as_deref() == Some(msg.name.as_str()))
            .map(|x| self.msg_link(&x.name))
            .collect();
        if !answers.is_empty() {
            facts.push(format!("**Reply to:** {}", answers.join(", ")));
        }
        if m.wire.ack_message.as_deref() == Some(msg.name.as_str()) {
            facts.push("**Role:** acknowledgment of every acknowledged message ([Acknowledgments](#wire-acknowledgment))".into());
        }
        if m.wire.error_message.as_deref() == Some(msg.name.as_str()) {
            facts.push("**Role:** error reply ([Error replies](#wire-errors))".into());
        }
        if m.wire.heartbeat_message.as_deref() == Some(msg.name.as_str()) {
            facts.push("**Role:** heartbeat ([Heartbeat](#wire-heartbeat))".into());
        }
        if msg.is_reply {
            let key = m
                .wire
                .envelope
                .correlation_id
                .as_deref()
                .unwrap_or("correlation id");
            facts.push(format!(
                "**Correlation:** a reply; `{key}` holds the id of the message answered{}",
                if m.wire.envelope.correlation_optional {
                    " (optional)"
                } else {
                    ""
                }
            ));
        }
        if msg.acknowledged {
            let ack = m
                .wire
                .ack_message
                .as_ref()
                .map_or("an acknowledgment".to_owned(), |a| self.msg_link(a));
            facts.push(format!(
                "**Acknowledged:** yes, with {ack} ([sequence](#{seq}))"
            ));
        } else {
            facts.push("**Acknowledged:** no".into());
        }
        match (&msg.priority, &m.wire.priority) {
            (Some(p), _) => facts.push(format!("**Priority:** `{p}`")),
            (None, Some((_, default))) => {
                facts.push(format!("**Priority:** `{default}` (default)"))
            }
            (None, None) => {}
        }
        let states: Vec<String> = m
            .machines
            .iter()
            .filter(|mach| {
                mach.transitions.iter().any(
                    |t| matches!(&t.on, Trigger::Send(n) | Trigger::Receive(n) if *n == msg.name),
                )
            })
            .map(|mach| format!("[`{}`](#{})", mach.name, mach.anchor))
            .collect();
        if !states.is_empty() {
            facts.push(format!("**State machines:** {}", states.join(", ")));
        }
        self.blank();
        for fact in facts {
            self.line(&format!("- {fact}"));
        }
        self.blank();
        let example = examples::envelope(m, msg)?;
        if examples::is_binary(m) {
            self.para("Example in decoded form (on the wire: the header's bytes, then the payload's; the length is the real one, the checksum is left 0 here because the codec computes it over the encoded bytes):");
        } else {
            self.para("Example:");
        }
        self.line("```json");
        self.line(&serde_json::to_string_pretty(&example)?);
        self.line("```");
        self.blank();
        Ok(())
    }

    pub(super) fn sequences(&mut self) {
        let m = self.m;
        self.heading(2, "sequences", "Sequences");
        let exchanges: Vec<&Message> = m
            .messages
            .iter()
            .filter(|x| x.reply.is_some() || x.acknowledged)
            .collect();
        if exchanges.is_empty() {
            self.para("No message expects a reply or an acknowledgment.");
            return;
        }
        self.para("One diagram per request with a reply and per acknowledged message.");
        let env = &m.wire.envelope;
        let (request_key, answer_key) = match (&env.id, &env.correlation_id) {
            (Some((id, _)), Some(corr)) => (Some(id.clone()), Some(corr.clone())),
            (None, Some(corr)) => (Some(corr.clone()), Some(corr.clone())),
            (Some((id, _)), None) => (Some(id.clone()), None),
            (None, None) => (None, None),
        };
        let req = |name: &str| match &request_key {
            Some(k) => format!("{name} ({k} = n)"),
            None => name.to_owned(),
        };
        let ans = |name: &str| match &answer_key {
            Some(k) => format!("{name} ({k} = n)"),
            None => name.to_owned(),
        };
        for msg in exchanges {
            let title = match &msg.reply {
                Some(r) => format!("`{}` → `{r}`", msg.name),
                None => format!("`{}` (acknowledged)", msg.name),
            };
            let id = sequence_anchor(msg);
            let id = if self.used.contains(&id) || self.reserved.contains(&id) {
                self.fresh(&id)
            } else {
                id
            };
            self.heading(3, &id, &title);
            let mut lines = vec![
                "sequenceDiagram".to_owned(),
                format!(
                    "    participant S as {}",
                    mermaid_text(&msg.from.join(" or "))
                ),
                format!(
                    "    participant R as {}",
                    mermaid_text(&msg.to.join(" or "))
                ),
                format!("    S->>R: {}", mermaid_text(&req(&msg.name))),
            ];
            if msg.acknowledged {
                if let Some(ack) = &m.wire.ack_message {
                    lines.push(format!("    R-->>S: {}", mermaid_text(&ans(ack))));
                }
            }
            if let Some(reply) = &msg.reply {
                let error = m.wire.error_message.as_ref().filter(|e| {
                    *e != reply
                        && m.message(e).is_some_and(|err| {
                            err.from.iter().any(|r| msg.to.contains(r))
                                && err.to.iter().any(|r| msg.from.contains(r))
                        })
                });
                match error {
                    Some(err) => {
                        lines.push("    alt handled".into());
                        lines.push(format!("        R-->>S: {}", mermaid_text(&ans(reply))));
                        lines.push("    else failed".into());
                        lines.push(format!("        R-->>S: {}", mermaid_text(&ans(err))));
                        lines.push("    end".into());
                    }
                    None => lines.push(format!("    R-->>S: {}", mermaid_text(&ans(reply)))),
                }
            }
            if let Some(timeout) = m.wire.timing.request_timeout_ms {
                lines.push(format!(
                    "    Note over S: no answer within {timeout} ms, the request times out"
                ));
            }
            self.line("```mermaid");
            for l in lines {
                self.line(&l);
            }
            self.line("```");
            self.blank();
        }
    }
}
