//! State machines: per catalogue machine, an enum of its states, an enum of its triggers,
//! and the only ways to move between states, `next` and `next_to`, which accept exactly
//! the declared transitions (anything else is an `InvalidTransition` saying what the state
//! accepts) and report each transition taken to `ipcspec_runtime::machine::record`. A
//! machine with a `stateType` converts to and from that enum (`From` both ways: the
//! language requires the two to have the same values).

use std::collections::BTreeMap;

use proc_macro2::{Ident, TokenStream};
use quote::quote;

use crate::ir::{Machine, MachineTrigger, Module, Trigger};

use super::{docs, ident};

/// Every machine of the module, and `MACHINES`, their tables.
pub(super) fn items(module: &Module) -> TokenStream {
    let mut items: TokenStream = module
        .machines
        .iter()
        .map(|machine| {
            let mut items = state_enum(machine);
            items.extend(trigger_enum(machine));
            items.extend(state_type_conversions(module, machine));
            items
        })
        .collect();
    let tables = module.machines.iter().map(|m| ident(&m.idents.rust));
    items.extend(quote! {
        /// Every state machine of the catalogue as data, in catalogue order: what a test
        /// comparing a service's transitions with the catalogue iterates.
        pub const MACHINES: &[ipcspec_runtime::machine::MachineTable] = &[#(#tables::TABLE),*];
    });
    items
}

/// The Rust variant of a state, by catalogue name.
fn state_variant(machine: &Machine, state: &str) -> Ident {
    machine
        .states
        .iter()
        .find(|s| s.name == state)
        .map(|s| ident(&s.idents.rust))
        .unwrap_or_else(|| ident(&crate::ir::names::rust_variant(state)))
}

/// The Rust variant of a trigger.
fn trigger_variant(machine: &Machine, on: &Trigger) -> TokenStream {
    let name = ident(&machine.trigger_enum);
    let variant = machine
        .triggers
        .iter()
        .find(|t| &t.on == on)
        .map(|t| ident(&t.rust))
        .unwrap_or_else(|| ident("Unknown"));
    quote!(#name::#variant)
}

fn runtime_trigger(on: &Trigger) -> TokenStream {
    match on {
        Trigger::Send(m) => quote!(ipcspec_runtime::Trigger::Send(#m)),
        Trigger::Receive(m) => quote!(ipcspec_runtime::Trigger::Receive(#m)),
        Trigger::Event(e) => quote!(ipcspec_runtime::Trigger::Event(#e)),
    }
}

/// A declared (source state, trigger) pair with its targets, each with the index in the
/// catalogue's transition list of the first transition to it.
type Group<'m> = (&'m str, &'m Trigger, Vec<(&'m str, usize)>);

/// The declared (state, trigger) pairs in first-seen order.
fn transition_groups(machine: &Machine) -> Vec<Group<'_>> {
    let mut order: Vec<(&str, &Trigger)> = Vec::new();
    let mut groups: BTreeMap<usize, Vec<(&str, usize)>> = BTreeMap::new();
    for (index, t) in machine.transitions.iter().enumerate() {
        let key = (t.from.as_str(), &t.on);
        let group = match order.iter().position(|k| *k == key) {
            Some(group) => group,
            None => {
                order.push(key);
                order.len() - 1
            }
        };
        let targets = groups.entry(group).or_default();
        if targets.iter().all(|(to, _)| *to != t.to) {
            targets.push((t.to.as_str(), index));
        }
    }
    order
        .into_iter()
        .enumerate()
        .map(|(group, (from, on))| (from, on, groups.remove(&group).unwrap_or_default()))
        .collect()
}

fn state_enum(machine: &Machine) -> TokenStream {
    let name = ident(&machine.idents.rust);
    let trigger = ident(&machine.trigger_enum);
    let roles = machine
        .roles
        .iter()
        .map(|r| format!("`{r}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let doc = docs::outer(&[
        machine.doc.clone(),
        format!("Held by {roles}; starts in `{}`.", machine.initial),
        format!(
            "A state changes only through [`{}::next`] and [`{}::next_to`], which allow exactly the catalogue's transitions.",
            machine.idents.rust, machine.idents.rust
        ),
    ]);
    let variants = machine.states.iter().map(|s| {
        let variant = ident(&s.idents.rust);
        let terminal = if s.terminal { "Terminal." } else { "" };
        let doc = docs::outer(&[s.doc.as_str(), terminal]);
        quote! { #doc #variant, }
    });
    let all = machine.states.iter().map(|s| ident(&s.idents.rust));
    let initial = state_variant(machine, &machine.initial);
    let per_state = |f: &dyn Fn(&crate::ir::State) -> TokenStream| {
        let arms = machine.states.iter().map(|s| {
            let variant = ident(&s.idents.rust);
            let value = f(s);
            quote!(Self::#variant => #value,)
        });
        quote!(match self { #(#arms)* })
    };
    let values = per_state(&|s| {
        let value = &s.value;
        quote!(#value)
    });
    let names = per_state(&|s| {
        let name = &s.name;
        quote!(#name)
    });
    let terminal: Vec<_> = machine
        .states
        .iter()
        .filter(|s| s.terminal)
        .map(|s| ident(&s.idents.rust))
        .collect();
    let is_terminal = if terminal.is_empty() {
        quote!(false)
    } else {
        quote!(matches!(self, #(Self::#terminal)|*))
    };
    let sends = per_state(&|s| {
        let messages = &s.sends;
        quote!(&[#(#messages),*])
    });
    let receives = per_state(&|s| {
        let messages = &s.receives;
        quote!(&[#(#messages),*])
    });
    let groups = transition_groups(machine);
    let accepts = per_state(&|s| {
        let triggers = groups
            .iter()
            .filter(|(from, _, _)| *from == s.name)
            .map(|(_, on, _)| trigger_variant(machine, on));
        quote!(&[#(#triggers),*])
    });
    let table = table(machine);

    let targets_arms = groups.iter().map(|(from, on, targets)| {
        let from = state_variant(machine, from);
        let on = trigger_variant(machine, on);
        let targets = targets.iter().map(|(to, _)| state_variant(machine, to));
        quote!((Self::#from, #on) => &[#(Self::#targets),*],)
    });
    let next_arms = groups.iter().map(|(from, on, targets)| {
        let from = state_variant(machine, from);
        let on = trigger_variant(machine, on);
        match targets.as_slice() {
            [(to, index)] => {
                let to = state_variant(machine, to);
                {
                    let index = proc_macro2::Literal::usize_unsuffixed(*index);
                    quote!((Self::#from, #on) => (Self::#to, #index),)
                }
            }
            // The catalogue lets the holder choose: only `next_to` can take it.
            _ => quote!((Self::#from, #on) => return Err(self.refused(trigger, None)),),
        }
    });
    let next_to_arms = groups.iter().flat_map(|(from, on, targets)| {
        let from = state_variant(machine, from);
        let on = trigger_variant(machine, on);
        targets.iter().map(move |(to, index)| {
            let to = state_variant(machine, to);
            let index = proc_macro2::Literal::usize_unsuffixed(*index);
            quote!((Self::#from, #on, Self::#to) => #index,)
        })
    });
    let (targets_body, next_body, next_to_body) = if groups.is_empty() {
        (
            quote!(match trigger {}),
            quote!(match trigger {}),
            quote!(match trigger {}),
        )
    } else {
        (
            quote! {
                match (self, trigger) {
                    #(#targets_arms)*
                    _ => &[],
                }
            },
            quote! {
                let (to, index) = match (self, trigger) {
                    #(#next_arms)*
                    _ => return Err(self.refused(trigger, None)),
                };
                ipcspec_runtime::machine::record(&Self::TABLE, index);
                Ok(to)
            },
            quote! {
                let index = match (self, trigger, to) {
                    #(#next_to_arms)*
                    _ => return Err(self.refused(trigger, Some(to))),
                };
                ipcspec_runtime::machine::record(&Self::TABLE, index);
                Ok(to)
            },
        )
    };
    quote! {
        #doc
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum #name {
            #(#variants)*
        }

        impl #name {
            /// The state a new machine is in.
            pub const INITIAL: Self = Self::#initial;

            /// Every state, in catalogue order.
            pub const ALL: &[Self] = &[#(Self::#all),*];

            /// The machine as data: its states and every declared transition.
            pub const TABLE: ipcspec_runtime::machine::MachineTable = #table;

            /// The state's value string.
            pub fn as_str(self) -> &'static str {
                #values
            }

            /// The state's catalogue name.
            pub fn name(self) -> &'static str {
                #names
            }

            /// True for a state no transition leaves.
            pub fn is_terminal(self) -> bool {
                #is_terminal
            }

            /// Wire names of the messages the holder may send in this state.
            pub fn sends(self) -> &'static [&'static str] {
                #sends
            }

            /// Wire names of the messages the holder accepts in this state.
            pub fn receives(self) -> &'static [&'static str] {
                #receives
            }

            /// The triggers with a declared transition out of this state, in catalogue
            /// order.
            pub fn accepts(self) -> &'static [#trigger] {
                #accepts
            }

            /// Every state `trigger` may lead to from this one, in catalogue order: none
            /// when the state does not accept it, more than one when the catalogue's
            /// prose decides (a payload field, a count) and the holder names the target
            /// with [`Self::next_to`].
            pub fn targets(self, trigger: #trigger) -> &'static [Self] {
                #targets_body
            }

            /// The state `trigger` leads to, when the catalogue declares exactly one;
            /// otherwise an `InvalidTransition` naming what this state accepts.
            pub fn next(
                self,
                trigger: #trigger,
            ) -> Result<Self, ipcspec_runtime::InvalidTransition> {
                #next_body
            }

            /// `to`, when the catalogue declares the transition from this state to `to` on
            /// `trigger`; otherwise an `InvalidTransition`.
            pub fn next_to(
                self,
                trigger: #trigger,
                to: Self,
            ) -> Result<Self, ipcspec_runtime::InvalidTransition> {
                #next_to_body
            }

            fn refused(
                self,
                trigger: #trigger,
                requested: Option<Self>,
            ) -> ipcspec_runtime::InvalidTransition {
                ipcspec_runtime::InvalidTransition {
                    machine: &Self::TABLE,
                    state: self.name(),
                    trigger: trigger.trigger(),
                    requested: requested.map(Self::name),
                }
            }
        }

        impl std::fmt::Display for #name {
            /// The state's value string.
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    }
}

/// `MachineTable { .. }` as a constant expression.
fn table(machine: &Machine) -> TokenStream {
    let name = &machine.name;
    let initial = &machine.initial;
    let states = machine.states.iter().map(|s| &s.name);
    let transitions = machine.transitions.iter().map(|t| {
        let (from, to) = (&t.from, &t.to);
        let trigger = runtime_trigger(&t.on);
        quote! {
            ipcspec_runtime::machine::Transition { from: #from, trigger: #trigger, to: #to }
        }
    });
    quote! {
        ipcspec_runtime::machine::MachineTable {
            name: #name,
            initial: #initial,
            states: &[#(#states),*],
            transitions: &[#(#transitions),*],
        }
    }
}

fn trigger_doc(t: &MachineTrigger) -> String {
    match &t.on {
        Trigger::Send(m) => format!("The holder sends `{m}`."),
        Trigger::Receive(m) => format!("The holder receives `{m}`."),
        Trigger::Event(e) => format!("The local event `{e}`."),
    }
}

fn trigger_enum(machine: &Machine) -> TokenStream {
    let name = ident(&machine.trigger_enum);
    let doc = docs::outer(&[format!(
        "What moves a [`{}`]: one variant per trigger of its transitions.",
        machine.idents.rust
    )]);
    let variants = machine.triggers.iter().map(|t| {
        let variant = ident(&t.rust);
        let doc = docs::outer(&[trigger_doc(t)]);
        quote!(#doc #variant,)
    });
    let all = machine.triggers.iter().map(|t| ident(&t.rust));
    let to_runtime = machine.triggers.iter().map(|t| {
        let variant = ident(&t.rust);
        let trigger = runtime_trigger(&t.on);
        quote!(Self::#variant => #trigger,)
    });
    let from_runtime = machine.triggers.iter().map(|t| {
        let variant = ident(&t.rust);
        let trigger = runtime_trigger(&t.on);
        quote!(#trigger => Some(Self::#variant),)
    });
    quote! {
        #doc
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum #name {
            #(#variants)*
        }

        impl #name {
            /// Every trigger, in the order the transitions first name them.
            pub const ALL: &[Self] = &[#(Self::#all),*];

            /// The trigger as the runtime describes it (message wire name or event name).
            pub fn trigger(self) -> ipcspec_runtime::Trigger<'static> {
                match self {
                    #(#to_runtime)*
                }
            }

            /// The variant for a runtime trigger (a message received by wire name, say),
            /// when this machine has it.
            pub fn from_trigger(trigger: ipcspec_runtime::Trigger<'_>) -> Option<Self> {
                match trigger {
                    #(#from_runtime)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for #name {
            /// `send X`, `receive X` or `event x`.
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.trigger().fmt(f)
            }
        }
    }
}

/// `From` both ways between a machine and its `stateType`.
fn state_type_conversions(module: &Module, machine: &Machine) -> TokenStream {
    let Some(state_type) = &machine.state_type else {
        return TokenStream::new();
    };
    let Some(ty) = module.types.get(state_type.ty.0) else {
        return TokenStream::new();
    };
    let machine_name = ident(&machine.idents.rust);
    let type_name = ident(&ty.idents.rust);
    let pairs: Vec<(Ident, Ident)> = machine
        .states
        .iter()
        .zip(&state_type.variants)
        .map(|(s, v)| (ident(&s.idents.rust), ident(v)))
        .collect();
    let to_type = pairs
        .iter()
        .map(|(s, v)| quote!(#machine_name::#s => #type_name::#v,));
    let to_machine = pairs
        .iter()
        .map(|(s, v)| quote!(#type_name::#v => #machine_name::#s,));
    let doc_to_type = docs::outer(&[format!(
        "The state as `{}` carries it in messages.",
        ty.name
    )]);
    let doc_to_machine = docs::outer(&[format!(
        "The `{}` state a `{}` value names.",
        machine.name, ty.name
    )]);
    quote! {
        impl From<#machine_name> for #type_name {
            #doc_to_type
            fn from(state: #machine_name) -> Self {
                match state {
                    #(#to_type)*
                }
            }
        }

        impl From<#type_name> for #machine_name {
            #doc_to_machine
            fn from(value: #type_name) -> Self {
                match value {
                    #(#to_machine)*
                }
            }
        }
    }
}
