//! Constraint validation: `impl validate::Validate` for every struct, union and enum, the
//! compiled patterns, and the `validate_json` registry.
//!
//! Serde decoding enforces a value's shape; these impls check what it cannot see: the
//! catalogue's `constraints` (of a field, and of every alias on the way to its type, so
//! an alias like `UserId` constrains every place it is used, lists and maps included) and
//! the zero padding of C-layout structs. The semantics are those of the JSON Schema
//! emitter (`emit::jsonschema`), keyword for keyword, so that decoding plus validation
//! accepts exactly the documents the generated schema accepts. Aliases are `pub type`s
//! and cannot have impls of their own: their checks are inlined wherever they are used.
//!
//! Checks are emitted only where a constraint can be reached, so types without any get
//! the trait's empty default and containers of them are not walked.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::ir::{
    Constraints, Field, Module, PrimitiveType, Struct, Ty, TypeId, TypeKind, UnionRepr, names,
};

use super::tys::Types;
use super::{docs, ident};

/// The prefix of the statics holding compiled patterns (`VALIDATE_PATTERN_0`, ...).
pub(super) const PATTERN_PREFIX: &str = "VALIDATE_PATTERN_";

/// What this concern adds to a module: pattern statics, `Validate` impls and the
/// `constraints` functions.
pub(super) fn items(module: &Module, types: &Types) -> TokenStream {
    let v = Validation::new(module, types);
    let statics = v.pattern_statics();
    let impls = (0..module.types.len()).map(|i| v.implementation(TypeId(i)));
    let alias_checks = v.alias_checks();
    quote! {
        #statics
        #(#impls)*
        #alias_checks
    }
}

/// The `validate_json` registry, which tests use (it goes into `registries`).
pub(super) fn registry(module: &Module, types: &Types) -> TokenStream {
    Validation::new(module, types).registry()
}

struct Validation<'m> {
    module: &'m Module,
    types: &'m Types<'m>,
    /// Distinct patterns, numbered in order of first use.
    patterns: BTreeMap<String, usize>,
    /// Memo of [`Validation::needs_named`].
    needs: RefCell<HashMap<TypeId, bool>>,
}

impl<'m> Validation<'m> {
    fn new(module: &'m Module, types: &'m Types<'m>) -> Self {
        let mut patterns = BTreeMap::new();
        let all_constraints = module.types.iter().flat_map(|t| match &t.kind {
            TypeKind::Struct(s) => s.fields.iter().map(|f| &f.constraints).collect(),
            TypeKind::Alias(a) => vec![&a.constraints],
            _ => Vec::new(),
        });
        for k in all_constraints {
            if let Some(p) = &k.pattern {
                let next = patterns.len();
                patterns.entry(p.clone()).or_insert(next);
            }
        }
        Validation {
            module,
            types,
            patterns,
            needs: RefCell::new(HashMap::new()),
        }
    }

    fn pattern_static(&self, pattern: &str) -> TokenStream {
        let n = self.patterns.get(pattern).copied().unwrap_or_default();
        let name = format_ident!("{PATTERN_PREFIX}{n}");
        quote!(#name)
    }

    fn pattern_statics(&self) -> TokenStream {
        let mut sorted: Vec<(&String, &usize)> = self.patterns.iter().collect();
        sorted.sort_by_key(|(_, n)| **n);
        let statics = sorted.into_iter().map(|(pattern, n)| {
            let name = format_ident!("{PATTERN_PREFIX}{n}");
            let doc = docs::outer(&[format!(
                "The constraint pattern {}, compiled on first use.",
                docs::code(pattern)
            )]);
            quote! {
                #doc
                static #name: validate::LazyPattern =
                    validate::LazyPattern::new(|| validate::Pattern::new(#pattern));
            }
        });
        quote!(#(#statics)*)
    }

    /// True when a value of type `ty` can violate something: a constraint or padding.
    fn needs(&self, ty: &Ty) -> bool {
        match ty {
            Ty::Prim(_) => false,
            Ty::Named(id) => self.needs_named(*id, &mut HashSet::new()),
            Ty::List(inner) | Ty::Map(inner) | Ty::Array(inner, _) => self.needs(inner),
        }
    }

    fn needs_named(&self, id: TypeId, visiting: &mut HashSet<TypeId>) -> bool {
        if let Some(known) = self.needs.borrow().get(&id) {
            return *known;
        }
        if !visiting.insert(id) {
            // A cycle: whatever it needs is found through its other paths.
            return false;
        }
        let ty_needs = |ty: &Ty, visiting: &mut HashSet<TypeId>| self.ty_needs(ty, visiting);
        let answer = match &self.module.ty(id).kind {
            TypeKind::Struct(s) => {
                !s.exactly_one_of.is_empty()
                    || !s.sums.is_empty()
                    || s.fields.iter().any(|f| {
                        f.padding || !f.constraints.is_empty() || ty_needs(&f.ty, visiting)
                    })
            }
            TypeKind::Union(u) => u
                .variants
                .iter()
                .any(|v| v.ty.as_ref().is_some_and(|t| ty_needs(t, visiting))),
            TypeKind::Alias(a) => !a.constraints.is_empty() || ty_needs(&a.ty, visiting),
            TypeKind::Enum(_) | TypeKind::IntEnum(_) => false,
        };
        visiting.remove(&id);
        // Only memoise answers that do not depend on a cycle still being explored.
        if answer || visiting.is_empty() {
            self.needs.borrow_mut().insert(id, answer);
        }
        answer
    }

    fn ty_needs(&self, ty: &Ty, visiting: &mut HashSet<TypeId>) -> bool {
        match ty {
            Ty::Prim(_) => false,
            Ty::Named(id) => self.needs_named(*id, visiting),
            Ty::List(inner) | Ty::Map(inner) | Ty::Array(inner, _) => {
                self.ty_needs(inner, visiting)
            }
        }
    }

    /// `impl validate::Validate for T` for structs, unions and enums (aliases have none).
    fn implementation(&self, id: TypeId) -> TokenStream {
        let def = self.module.ty(id);
        let name = ident(&def.idents.rust);
        let body = match &def.kind {
            TypeKind::Alias(_) => return TokenStream::new(),
            TypeKind::Enum(_) | TypeKind::IntEnum(_) => None,
            TypeKind::Struct(s) => {
                let mut checks: Vec<TokenStream> = s
                    .fields
                    .iter()
                    .filter_map(|f| self.field(f, quote!(self)))
                    .collect();
                checks.extend(cross_field_checks(s, quote!(self)));
                (!checks.is_empty()).then(|| quote!(#(#checks)*))
            }
            TypeKind::Union(u) => {
                let mut arms = Vec::new();
                let mut skipped = false;
                for v in &u.variants {
                    let check = v.ty.as_ref().and_then(|ty| {
                        let check = match (u.repr, &u.content) {
                            (UnionRepr::Adjacent, Some(content)) => {
                                let inner = self.value(ty, &[], quote!(content), quote!(at))?;
                                quote! {
                                    let at = &at.field(#content);
                                    #inner
                                }
                            }
                            // Internally tagged: the variant's fields sit beside the tag.
                            _ => self.value(ty, &[], quote!(content), quote!(at))?,
                        };
                        Some(check)
                    });
                    match check {
                        Some(check) => {
                            let variant = ident(&v.idents.rust);
                            arms.push(quote!(Self::#variant(content) => { #check }));
                        }
                        None => skipped = true,
                    }
                }
                if arms.is_empty() {
                    None
                } else {
                    let rest = skipped.then(|| quote!(_ => {}));
                    Some(quote! {
                        match self {
                            #(#arms)*
                            #rest
                        }
                    })
                }
            }
        };
        match body {
            None => quote! {
                impl validate::Validate for #name {}
            },
            Some(body) => {
                let doc = docs::outer(&[format!(
                    "Checks the constraints of `{}`, its fields and the values they hold.",
                    def.name
                )]);
                quote! {
                    impl validate::Validate for #name {
                        #doc
                        fn validate_at(
                            &self,
                            at: &validate::Path<'_>,
                            errors: &mut Vec<validate::ValidationError>,
                        ) {
                            #body
                        }
                    }
                }
            }
        }
    }

    /// `pub mod constraints`: for every alias that constrains its values, a function
    /// checking one value as a field of that type is checked (`constraints::machine_id`
    /// for `MachineId`), so code holding a bare value (a borrowed string, say) applies
    /// the catalogue's rules without building the struct around it. The names are the
    /// aliases' in snake case: the same words as the type names, which the IR has
    /// checked are distinct, so they cannot collide either.
    fn alias_checks(&self) -> TokenStream {
        let functions: Vec<TokenStream> = self
            .module
            .types
            .iter()
            .enumerate()
            .filter_map(|(i, def)| {
                let TypeKind::Alias(_) = &def.kind else {
                    return None;
                };
                let ty = Ty::Named(TypeId(i));
                let check = self.value(&ty, &[], quote!(value), quote!(at))?;
                let function = ident(&crate::ir::names::rust_member(&def.name));
                let alias = ident(&def.idents.rust);
                let param = match self.types.resolve(&ty) {
                    Ty::Prim(PrimitiveType::String) => quote!(str),
                    _ => quote!(#alias),
                };
                let doc = docs::outer(&[format!(
                    "Checks one `{}` value against the constraints of the alias and of every \
                     alias it names, as a field of that type is checked, appending what it \
                     breaks to `errors` at `at`.",
                    def.name
                )]);
                Some(quote! {
                    #doc
                    pub fn #function(
                        value: &#param,
                        at: &validate::Path<'_>,
                        errors: &mut Vec<validate::ValidationError>,
                    ) {
                        #check
                    }
                })
            })
            .collect();
        let mut functions = functions;
        functions.extend(self.header_flags());
        if functions.is_empty() {
            return TokenStream::new();
        }
        quote! {
            /// The constraints of each constrained alias, as a function of one value, and
            /// the header flags each message must carry when the envelope sets them.
            pub mod constraints {
                #[allow(unused_imports)]
                use super::*;
                #(#functions)*
            }
        }
    }

    /// `expected_header_flags(code)`: the exact flags the envelope sets (`flagBits`) in the
    /// header of the message with that code, for a receiver to compare; `None` without
    /// `flagBits`.
    fn header_flags(&self) -> Option<TokenStream> {
        let m = self.module;
        let bits = m.wire.envelope.flag_bits.as_ref()?;
        let arms = m.messages.iter().filter_map(|msg| {
            let code = Literal::u64_suffixed(u64::try_from(msg.code?).ok()?);
            let flags = Literal::u64_suffixed(u64::try_from(m.header_flags(msg)?).ok()?);
            Some(quote!(#code => Some(#flags),))
        });
        let doc = docs::outer(&[format!(
            "The exact flags of the header of the message with code `code`, as the envelope \
             sets them (`flagBits`): `None` for a code of no message. A receiver answers a \
             message with other flags with `{}`.",
            bits.error
        )]);
        Some(quote! {
            #doc
            pub fn expected_header_flags(code: u64) -> Option<u64> {
                match code {
                    #(#arms)*
                    _ => None,
                }
            }
        })
    }

    /// The checks of one struct field (of the struct `this`), if any.
    fn field(&self, f: &Field, this: TokenStream) -> Option<TokenStream> {
        let member = ident(&f.idents.rust);
        let wire = &f.wire;
        if f.padding {
            return self.padding(f, quote!(#this.#member));
        }
        let check = self.value(&f.ty, &[&f.constraints], quote!(value), quote!(at))?;
        let check = quote! {
            let at = &at.field(#wire);
            #check
        };
        Some(match (f.optional, f.nullable) {
            (false, false) => quote! {{
                let value = &#this.#member;
                #check
            }},
            (true, true) => quote! {
                if let Some(Some(value)) = &#this.#member {
                    #check
                }
            },
            _ => quote! {
                if let Some(value) = &#this.#member {
                    #check
                }
            },
        })
    }

    /// Padding must be zero: an unsigned integer or an array of them (`value` is the
    /// field's place expression, `self.reserved`).
    fn padding(&self, f: &Field, value: TokenStream) -> Option<TokenStream> {
        let wire = &f.wire;
        match self.types.resolve(&f.ty) {
            Ty::Prim(_) => Some(quote! {
                validate::padding(#value, &at.field(#wire), errors);
            }),
            Ty::Array(inner, _) if matches!(self.types.resolve(inner), Ty::Prim(_)) => {
                Some(quote! {{
                    let at = &at.field(#wire);
                    for (i, item) in #value.iter().enumerate() {
                        validate::padding(*item, &at.index(i), errors);
                    }
                }})
            }
            _ => None,
        }
    }

    /// Statements checking `value` (an expression of type `&T`, `T` the Rust type of
    /// `ty`, possibly boxed: every use auto-dereferences) at path `at` (an expression of type `&validate::Path`) against
    /// `constraints` (outermost first) and everything its type brings: alias constraints,
    /// elements, nested structs and unions. `None` when nothing can be violated.
    fn value(
        &self,
        ty: &Ty,
        constraints: &[&Constraints],
        value: TokenStream,
        at: TokenStream,
    ) -> Option<TokenStream> {
        // Follow aliases, collecting their constraints: they all apply to the value.
        let mut all: Vec<&Constraints> = constraints.to_vec();
        let mut ty = ty;
        let mut seen = HashSet::new();
        while let Ty::Named(id) = ty {
            match &self.module.ty(*id).kind {
                TypeKind::Alias(a) if seen.insert(*id) => {
                    all.push(&a.constraints);
                    ty = &a.ty;
                }
                _ => break,
            }
        }
        let mut out = TokenStream::new();
        for k in all.iter().filter(|k| !k.is_empty()) {
            out.extend(self.constraint_checks(ty, k, &value, &at));
        }
        let nested = match ty {
            Ty::Named(id) => match &self.module.ty(*id).kind {
                TypeKind::Struct(_) | TypeKind::Union(_) if self.needs(ty) => {
                    Some(quote!(validate::Validate::validate_at(#value, #at, errors);))
                }
                _ => None,
            },
            Ty::List(inner) | Ty::Array(inner, _) => self
                .value(inner, &[], quote!(item), quote!(at))
                .map(|check| {
                    quote! {
                        for (i, item) in #value.iter().enumerate() {
                            let at = &#at.index(i);
                            #check
                        }
                    }
                }),
            Ty::Map(inner) => self
                .value(inner, &[], quote!(item), quote!(at))
                .map(|check| {
                    quote! {
                        for (key, item) in #value.iter() {
                            let at = &#at.entry(key);
                            #check
                        }
                    }
                }),
            Ty::Prim(_) => None,
        };
        out.extend(nested);
        (!out.is_empty()).then_some(out)
    }

    /// The checks of one constraint set on a value whose type (aliases resolved) is `ty`.
    /// The catalogue validator has made sure each keyword fits the type: bounds on
    /// numbers, lengths and patterns on strings, item counts on lists.
    fn constraint_checks(
        &self,
        ty: &Ty,
        k: &Constraints,
        value: &TokenStream,
        at: &TokenStream,
    ) -> TokenStream {
        let mut out = TokenStream::new();
        match ty {
            Ty::Prim(PrimitiveType::String) => {
                // A minimum of 0 holds for every value: no check.
                if let Some(n) = k.min_length.filter(|n| *n > 0) {
                    let n = Literal::u64_unsuffixed(n);
                    out.extend(quote!(validate::min_length(#value, #n, #at, errors);));
                }
                if let Some(n) = k.max_length {
                    let n = Literal::u64_unsuffixed(n);
                    out.extend(quote!(validate::max_length(#value, #n, #at, errors);));
                }
                if let Some(p) = &k.pattern {
                    let name = self.pattern_static(p);
                    out.extend(quote!(validate::pattern(#value, &#name, #at, errors);));
                }
            }
            Ty::Prim(p) if numeric(*p) => {
                // `int64Encoding: string` changes only the wire form: the bounds apply to
                // the decoded number.
                if let Some(v) = k.minimum {
                    let v = float(v);
                    out.extend(quote!(validate::minimum(*#value, #v, #at, errors);));
                }
                if let Some(v) = k.maximum {
                    let v = float(v);
                    out.extend(quote!(validate::maximum(*#value, #v, #at, errors);));
                }
            }
            Ty::List(_) => {
                if let Some(n) = k.min_items.filter(|n| *n > 0) {
                    let n = Literal::u64_unsuffixed(n);
                    out.extend(quote!(validate::min_items(#value.len(), #n, #at, errors);));
                }
                if let Some(n) = k.max_items {
                    let n = Literal::u64_unsuffixed(n);
                    out.extend(quote!(validate::max_items(#value.len(), #n, #at, errors);));
                }
            }
            _ => {}
        }
        out
    }

    /// `validate_json`: decode JSON as the named type, then validate it.
    fn registry(&self) -> TokenStream {
        let arms = self.module.types.iter().enumerate().map(|(index, def)| {
            let name = &def.name;
            let rust = ident(&def.idents.rust);
            let ty = Ty::Named(TypeId(index));
            let adapter = match &def.kind {
                TypeKind::Alias(_) => self.types.adapter_or_same(&ty),
                _ => quote!(serde_as::Same),
            };
            let check = match (&def.kind, self.value(&ty, &[], quote!(value), quote!(at))) {
                // The alias's function in `constraints` holds these very checks.
                (TypeKind::Alias(_), Some(_)) => {
                    let function = ident(&crate::ir::names::rust_member(&def.name));
                    quote!(|value, at, errors| constraints::#function(value, at, errors))
                }
                (_, Some(check)) => quote!(|value, at, errors| { #check }),
                (_, None) => quote!(|_, _, _| {}),
            };
            quote!(#name => validate::json_verdict::<#rust, #adapter>(value, #check),)
        });
        let body = if self.module.types.is_empty() {
            quote! {
                let _ = (type_name, value);
                None
            }
        } else {
            quote! {
                let result = match type_name {
                    #(#arms)*
                    _ => return None,
                };
                Some(result)
            }
        };
        quote! {
            /// Deserializes `value` as the catalogue type named `type_name` and checks it
            /// against the catalogue's constraints: `Err` names the first decoding error
            /// or every violated constraint; `None` when the module has no such type.
            pub fn validate_json(
                type_name: &str,
                value: serde_json::Value,
            ) -> Option<Result<(), String>> {
                #body
            }
        }
    }
}

/// The rules across a struct's fields: each `exactlyOneOf` group, then each computed sum
/// (`this` is the struct's place expression). Members are found by wire name; lowering
/// has checked they exist.
fn cross_field_checks(s: &Struct, this: TokenStream) -> Vec<TokenStream> {
    let member = |wire: &str| {
        s.fields
            .iter()
            .find(|f| f.wire == wire)
            .map(|f| ident(&f.idents.rust))
    };
    let mut out = Vec::new();
    for group in &s.exactly_one_of {
        let present: Vec<TokenStream> = group
            .iter()
            .filter_map(|wire| member(wire))
            .map(|m| quote!(#this.#m.is_some()))
            .collect();
        out.push(quote! {
            validate::exactly_one_of(&[#(#present),*], &[#(#group),*], at, errors);
        });
    }
    for sum in &s.sums {
        let (Some(field), Some(list)) = (member(&sum.field), member(&sum.list)) else {
            continue;
        };
        let item = ident(&names::rust_member(&sum.item_field));
        let (wire, list_wire, item_wire) = (&sum.field, &sum.list, &sum.item_field);
        out.push(quote! {
            validate::sum_of(
                i128::from(#this.#field),
                #this.#list.iter().map(|item| i128::from(item.#item)),
                #list_wire,
                #item_wire,
                &at.field(#wire),
                errors,
            );
        });
    }
    out
}

fn numeric(p: PrimitiveType) -> bool {
    p.int_range().is_some()
        || p.is_float()
        || matches!(p, PrimitiveType::Duration | PrimitiveType::Fd)
}

/// A bound as an `f64` literal, negative values included.
fn float(v: f64) -> TokenStream {
    let magnitude = Literal::f64_unsuffixed(v.abs());
    if v < 0.0 {
        quote!(-#magnitude)
    } else {
        quote!(#magnitude)
    }
}
