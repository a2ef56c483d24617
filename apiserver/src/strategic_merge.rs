//! Strategic merge patch (`application/strategic-merge-patch+json`), applied on
//! the server side the way kube-apiserver applies it, so that `kubectl apply`
//! re-applies, `kubectl edit` and `kubectl patch` behave against Berth exactly
//! as against Kubernetes.
//!
//! This module owns the merge itself: the patch directives (`$patch`,
//! `$setElementOrder/<field>`, `$retainKeys`, `$deleteFromPrimitiveList/<field>`),
//! merging lists of maps by their merge key, unions of primitive lists and the
//! element order rules of apimachinery's `strategicpatch` package
//! (`StrategicMergePatchUsingLookupPatchMeta` with `PatchMetaFromOpenAPI`). The
//! patch metadata is read from the OpenAPI v3 document through [`SchemaView`]
//! (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`).
//!
//! It must not do anything else: no decoding into typed objects, no defaulting,
//! no validation of the result, no computing patches (that is the client's
//! half), and no I/O. It never panics on any input; a malformed patch is a
//! [`PatchError`], which the HTTP edge turns into a `400 Bad Request` status.

use serde_json::{Map, Value};

/// A view of one node of an OpenAPI v3 schema document.
#[derive(Clone, Copy)]
pub struct SchemaView<'a> {
    /// `components.schemas`: definition name -> schema. `$ref`s look like "#/components/schemas/io.k8s.api.core.v1.PodSpec".
    pub definitions: &'a Map<String, Value>,
    /// The schema of the value at this point (may be a `$ref`, or `allOf: [{$ref}]` wrapping, or inline).
    pub node: &'a Value,
}

/// Why a strategic merge patch could not be applied. The messages follow
/// apimachinery's (`mergepatch` and `strategicpatch` packages) where it has one,
/// so clients see the wording they know from Kubernetes.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PatchError {
    /// The patch (or the stored object) is not a JSON object.
    #[error("invalid JSON document")]
    InvalidJsonDocument,
    /// An item of a merging list has no value for the list's merge key.
    #[error("map: {map} does not contain declared merge key: {merge_key}")]
    NoMergeKey { map: String, merge_key: String },
    /// A list with strategy `merge` holds maps, but the schema names no merge key.
    #[error("cannot merge lists without merge key for {field}")]
    NoMergeKeyDeclared { field: String },
    /// `$patch` holds something other than `replace`, `delete` or `merge`.
    #[error("unknown patch type: {patch_type} in map: {map}")]
    UnknownPatchType { patch_type: String, map: String },
    /// `{"$patch": "merge"}` as an item of a list.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// A merging list mixes maps and scalars, or scalars of different types.
    #[error("list element types are not identical: {list}")]
    ListElementTypesDiffer { list: String },
    /// A value has the wrong JSON type for where it stands.
    #[error("expected a {expected}, but received a {actual}")]
    BadArgType {
        expected: &'static str,
        actual: &'static str,
    },
    #[error("invalid patch format of primitive list")]
    BadPatchFormatForPrimitiveList,
    /// `$retainKeys` is not a list, or the patch sets a field it does not list.
    #[error("invalid patch format of retainKeys")]
    BadPatchFormatForRetainKeys,
    #[error("invalid patch format of setElementOrder list")]
    BadPatchFormatForSetElementOrderList,
    /// The items of a patch list are not in the order `$setElementOrder` gives.
    #[error(
        "the order in patch list:\n{patch_list}\n doesn't match $setElementOrder list:\n{order_list}"
    )]
    SetElementOrderMismatch {
        patch_list: String,
        order_list: String,
    },
    /// The schema carries an `x-kubernetes-patch-strategy` we cannot read.
    #[error("unexpected patch strategy: {0}")]
    UnexpectedPatchStrategy(String),
    /// The patch nests deeper than any Kubernetes object does; refused rather
    /// than risking the stack.
    #[error("patch nests deeper than {max} levels")]
    TooDeep { max: usize },
}

/// Apply a strategic merge patch to `original`. `schema` describes the top-level object; `None` (or an unknown field) means no patch metadata: maps merge recursively, lists are replaced whole (as Kubernetes does for fields without metadata).
pub fn apply(
    original: &Value,
    patch: &Value,
    schema: Option<SchemaView<'_>>,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::InvalidJsonDocument);
    };
    let original = match original {
        Value::Object(map) => map.clone(),
        // apimachinery treats an empty original document as `{}`.
        Value::Null => Map::new(),
        _ => return Err(PatchError::InvalidJsonDocument),
    };
    merge_map(original, patch, schema, 0).map(Value::Object)
}

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const RETAIN_KEYS_STRATEGY: &str = "retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";
const PATCH_STRATEGY_EXTENSION: &str = "x-kubernetes-patch-strategy";
const PATCH_MERGE_KEY_EXTENSION: &str = "x-kubernetes-patch-merge-key";
const SCHEMA_REF_PREFIXES: [&str; 2] = ["#/components/schemas/", "#/definitions/"];

/// Far deeper than any Kubernetes object (serde_json itself stops parsing at
/// 128), yet shallow enough for a 2 MiB async worker stack.
const MAX_DEPTH: usize = 256;
/// Bounds `$ref`/`allOf` chasing, so a schema that refers to itself cannot
/// loop forever.
const MAX_SCHEMA_HOPS: usize = 32;

impl<'a> SchemaView<'a> {
    fn with_node(self, node: &'a Value) -> Self {
        SchemaView {
            definitions: self.definitions,
            node,
        }
    }

    /// Looks for something on this node first, then on the schemas it refers
    /// to (`$ref`, then each `allOf` member), nearest first: Kubernetes puts
    /// patch extensions beside the `allOf`/`$ref` of a property, and the
    /// structure (`properties`, `items`) on the referenced definition.
    fn find<T>(self, get: &impl Fn(&'a Map<String, Value>) -> Option<T>) -> Option<T> {
        self.find_within(get, 0)
    }

    fn find_within<T>(
        self,
        get: &impl Fn(&'a Map<String, Value>) -> Option<T>,
        hops: usize,
    ) -> Option<T> {
        if hops > MAX_SCHEMA_HOPS {
            return None;
        }
        let node = self.node.as_object()?;
        if let Some(found) = get(node) {
            return Some(found);
        }
        let referenced = node
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|reference| self.definition(reference));
        let members = node.get("allOf").and_then(Value::as_array);
        referenced
            .into_iter()
            .chain(members.into_iter().flatten())
            .find_map(|next| self.with_node(next).find_within(get, hops + 1))
    }

    fn definition(self, reference: &str) -> Option<&'a Value> {
        let name = SCHEMA_REF_PREFIXES
            .iter()
            .find_map(|prefix| reference.strip_prefix(prefix))?;
        self.definitions.get(name)
    }

    /// The schema of the value under `key`: a declared property, or the value
    /// schema of a map (`additionalProperties`, as for labels or data).
    fn property(self, key: &str) -> Option<Self> {
        self.find(&|node| {
            node.get("properties")
                .and_then(Value::as_object)
                .and_then(|properties| properties.get(key))
                .or_else(|| node.get("additionalProperties").filter(|s| s.is_object()))
        })
        .map(|node| self.with_node(node))
    }

    fn items(self) -> Option<Self> {
        self.find(&|node| node.get("items").filter(|s| s.is_object()))
            .map(|node| self.with_node(node))
    }

    fn extension(self, name: &str) -> Option<&'a str> {
        self.find(&|node| node.get(name).and_then(Value::as_str))
    }
}

/// The patch strategy of a field, without `retainKeys`: that one only tells
/// clients to send `$retainKeys`, which the server honours wherever it appears.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Strategy {
    /// Maps merge, lists are replaced.
    #[default]
    Default,
    Merge,
    Replace,
}

fn parse_strategy(raw: &str) -> Result<Strategy, PatchError> {
    let parts: Vec<&str> = raw.split(',').map(str::trim).collect();
    let others: Vec<&str> = parts
        .iter()
        .copied()
        .filter(|part| *part != RETAIN_KEYS_STRATEGY)
        .collect();
    // As apimachinery: at most two strategies, and if two, one is retainKeys.
    let strategy = match (parts.len(), others.as_slice()) {
        (1, []) => None,
        (1 | 2, [strategy]) => Some(*strategy),
        _ => return Err(PatchError::UnexpectedPatchStrategy(raw.to_owned())),
    };
    Ok(match strategy {
        Some(MERGE_DIRECTIVE) => Strategy::Merge,
        Some(REPLACE_DIRECTIVE) => Strategy::Replace,
        _ => Strategy::Default,
    })
}

/// What the schema says about one field of a map, or about the items of a list.
#[derive(Clone, Copy, Default)]
struct FieldMeta<'s> {
    schema: Option<SchemaView<'s>>,
    strategy: Strategy,
    merge_key: Option<&'s str>,
}

impl<'s> FieldMeta<'s> {
    fn lookup(parent: Option<SchemaView<'s>>, field: &str) -> Result<Self, PatchError> {
        let Some(schema) = parent.and_then(|parent| parent.property(field)) else {
            return Ok(Self::default());
        };
        let strategy = match schema.extension(PATCH_STRATEGY_EXTENSION) {
            Some(raw) => parse_strategy(raw)?,
            None => Strategy::Default,
        };
        Ok(Self {
            schema: Some(schema),
            strategy,
            merge_key: schema.extension(PATCH_MERGE_KEY_EXTENSION),
        })
    }

    fn items(&self) -> FieldMeta<'s> {
        FieldMeta {
            schema: self.schema.and_then(SchemaView::items),
            ..FieldMeta::default()
        }
    }
}

/// How a key of a patch map is to be read.
enum PatchKey<'p> {
    /// `$patch` or `$retainKeys`: handled before the fields are merged.
    Directive,
    SetElementOrder(&'p str),
    DeleteFromPrimitiveList(&'p str),
    Field(&'p str),
}

fn classify(key: &str) -> Result<PatchKey<'_>, PatchError> {
    if key == DIRECTIVE_MARKER || key == RETAIN_KEYS_DIRECTIVE {
        Ok(PatchKey::Directive)
    } else if key.starts_with(SET_ELEMENT_ORDER_PREFIX) {
        directive_field(key, SET_ELEMENT_ORDER_PREFIX)
            .map(PatchKey::SetElementOrder)
            .ok_or(PatchError::BadPatchFormatForSetElementOrderList)
    } else if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
        directive_field(key, DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            .map(PatchKey::DeleteFromPrimitiveList)
            .ok_or(PatchError::BadPatchFormatForPrimitiveList)
    } else {
        Ok(PatchKey::Field(key))
    }
}

/// `"$setElementOrder/containers"` -> `"containers"`.
fn directive_field<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    let (head, field) = key.split_once('/')?;
    (head == prefix).then_some(field)
}

fn descend(depth: usize) -> Result<usize, PatchError> {
    if depth >= MAX_DEPTH {
        Err(PatchError::TooDeep { max: MAX_DEPTH })
    } else {
        Ok(depth + 1)
    }
}

/// Merges a patch map into an original map (apimachinery's `mergeMap`).
fn merge_map(
    original: Map<String, Value>,
    patch: &Map<String, Value>,
    schema: Option<SchemaView<'_>>,
    depth: usize,
) -> Result<Map<String, Value>, PatchError> {
    let depth = descend(depth)?;
    let Some(directive) = patch.get(DIRECTIVE_MARKER) else {
        return merge_map_fields(original, patch, schema, depth);
    };
    match directive.as_str() {
        Some(MERGE_DIRECTIVE) => merge_map_fields(original, patch, schema, depth),
        // The rest of the patch map becomes the whole value; merging it into an
        // empty map still consumes any directives nested in it.
        Some(REPLACE_DIRECTIVE) => merge_map_fields(Map::new(), patch, schema, depth),
        // As in Kubernetes, the map is emptied, not removed from its parent.
        Some(DELETE_DIRECTIVE) => Ok(Map::new()),
        _ => Err(unknown_patch_type(directive, patch)),
    }
}

fn merge_map_fields(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    schema: Option<SchemaView<'_>>,
    depth: usize,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(retained) = patch.get(RETAIN_KEYS_DIRECTIVE) {
        retain_keys(&mut original, patch, retained)?;
    }

    // Lists named by `$setElementOrder` are merged and ordered first; their
    // patch values must then not be merged a second time below.
    let mut ordered_fields = Vec::new();
    for (key, order) in patch {
        if let PatchKey::SetElementOrder(field) = classify(key)? {
            apply_element_order(&mut original, patch, field, order, schema, depth)?;
            ordered_fields.push(field);
        }
    }

    // Deletions from primitive lists run after the additions to the same list,
    // so the outcome does not depend on the order of keys in the patch.
    let mut deletions = Vec::new();
    for (key, value) in patch {
        match classify(key)? {
            PatchKey::Directive | PatchKey::SetElementOrder(_) => {}
            PatchKey::DeleteFromPrimitiveList(field) => deletions.push((field, value)),
            PatchKey::Field(field) if ordered_fields.contains(&field) => {}
            PatchKey::Field(field) => merge_field(&mut original, field, value, schema, depth)?,
        }
    }
    for (field, values) in deletions {
        delete_from_primitive_list(&mut original, field, values)?;
    }
    Ok(original)
}

/// `$retainKeys`: every field the patch sets must be listed, and the original
/// loses the fields that are not (how a Deployment drops `rollingUpdate` when
/// its strategy becomes `Recreate`).
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    retained: &Value,
) -> Result<(), PatchError> {
    let Value::Array(retained) = retained else {
        return Err(PatchError::BadPatchFormatForRetainKeys);
    };
    let is_retained = |key: &str| retained.iter().any(|name| name.as_str() == Some(key));
    for (key, value) in patch {
        if let PatchKey::Field(field) = classify(key)?
            && !value.is_null()
            && !is_retained(field)
        {
            return Err(PatchError::BadPatchFormatForRetainKeys);
        }
    }
    original.retain(|key, _| is_retained(key));
    Ok(())
}

fn merge_field(
    original: &mut Map<String, Value>,
    field: &str,
    patch_value: &Value,
    schema: Option<SchemaView<'_>>,
    depth: usize,
) -> Result<(), PatchError> {
    if patch_value.is_null() {
        original.remove(field);
        return Ok(());
    }
    let meta = FieldMeta::lookup(schema, field)?;
    // Taken out and put back, so the field keeps its place in the map.
    let existing = original.get_mut(field).map(std::mem::take);
    match merge_value(existing, patch_value, &meta, field, depth)? {
        Some(merged) => {
            original.insert(field.to_owned(), merged);
        }
        None => {
            original.remove(field);
        }
    }
    Ok(())
}

/// Merges one patch value into the existing value of a field (`None`: the
/// field is absent). `Ok(None)` means the field is to be left out.
fn merge_value(
    existing: Option<Value>,
    patch: &Value,
    meta: &FieldMeta<'_>,
    field: &str,
    depth: usize,
) -> Result<Option<Value>, PatchError> {
    match (existing, patch) {
        (Some(Value::Object(existing)), Value::Object(patch))
            if meta.strategy != Strategy::Replace =>
        {
            merge_map(existing, patch, meta.schema, depth).map(|merged| Some(Value::Object(merged)))
        }
        (Some(Value::Array(existing)), Value::Array(patch)) if meta.strategy == Strategy::Merge => {
            merge_list(existing, patch, meta, field, depth).map(|merged| Some(Value::Array(merged)))
        }
        // Absent, replaced by strategy, or of another JSON type: the patch
        // value is taken as it stands, less its directives.
        (_, patch) => materialize(patch, meta, field, depth),
    }
}

/// Turns a patch value into a plain value for a place with nothing to merge
/// into: nulls in maps are dropped and directives are applied to nothing, so
/// no directive key reaches the stored object.
fn materialize(
    patch: &Value,
    meta: &FieldMeta<'_>,
    field: &str,
    depth: usize,
) -> Result<Option<Value>, PatchError> {
    match patch {
        Value::Object(map) if is_directive(map, DELETE_DIRECTIVE) => Ok(None),
        Value::Object(map) => {
            merge_map(Map::new(), map, meta.schema, depth).map(|merged| Some(Value::Object(merged)))
        }
        Value::Array(items) if meta.strategy == Strategy::Merge => {
            merge_list(Vec::new(), items, meta, field, depth)
                .map(|merged| Some(Value::Array(merged)))
        }
        Value::Array(items) => {
            let depth = descend(depth)?;
            let item_meta = meta.items();
            let mut plain = Vec::with_capacity(items.len());
            for item in items {
                plain.extend(materialize(item, &item_meta, field, depth)?);
            }
            Ok(Some(Value::Array(plain)))
        }
        scalar => Ok(Some(scalar.clone())),
    }
}

fn is_directive(map: &Map<String, Value>, directive: &str) -> bool {
    map.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(directive)
}

/// JSON types as apimachinery tells list elements apart (Go's dynamic types).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Map,
    String,
    Number,
    Bool,
    Null,
}

/// The one kind of element in `lists`, or `None` when they are all empty.
fn element_kind(lists: &[&[Value]]) -> Result<Option<ElementKind>, PatchError> {
    let mut seen = None;
    for item in lists.iter().flat_map(|list| list.iter()) {
        let kind = match item {
            Value::Object(_) => ElementKind::Map,
            Value::String(_) => ElementKind::String,
            Value::Number(_) => ElementKind::Number,
            Value::Bool(_) => ElementKind::Bool,
            Value::Null => ElementKind::Null,
            Value::Array(_) => return Err(PatchError::ListOfLists),
        };
        match seen {
            None => seen = Some(kind),
            Some(previous) if previous != kind => {
                let list = lists
                    .iter()
                    .map(|list| Value::Array(list.to_vec()).to_string())
                    .collect::<Vec<_>>()
                    .join(" ");
                return Err(PatchError::ListElementTypesDiffer { list });
            }
            Some(_) => {}
        }
    }
    Ok(seen)
}

/// Merges a patch list into a list whose field has strategy `merge`
/// (apimachinery's `mergeSlice`).
fn merge_list(
    existing: Vec<Value>,
    patch: &[Value],
    meta: &FieldMeta<'_>,
    field: &str,
    depth: usize,
) -> Result<Vec<Value>, PatchError> {
    let depth = descend(depth)?;
    match element_kind(&[&existing, patch])? {
        None => Ok(existing),
        Some(ElementKind::Map) => {
            let merge_key = meta
                .merge_key
                .ok_or_else(|| PatchError::NoMergeKeyDeclared {
                    field: field.to_owned(),
                })?;
            merge_map_list(existing, patch, merge_key, &meta.items(), depth)
        }
        Some(_) => Ok(merge_primitive_list(existing, patch)),
    }
}

/// A union that keeps no duplicates, ordered as [`normalize_element_order`] says.
fn merge_primitive_list(existing: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    let server_order = existing.clone();
    let mut merged: Vec<Value> = Vec::with_capacity(existing.len() + patch.len());
    for item in existing.into_iter().chain(patch.iter().cloned()) {
        if !merged.iter().any(|kept| values_equal(kept, &item)) {
            merged.push(item);
        }
    }
    let patch_order: Vec<Option<&Value>> = patch.iter().map(Some).collect();
    let server_order: Vec<Option<&Value>> = server_order.iter().map(Some).collect();
    normalize_element_order(merged, &patch_order, &server_order, None)
}

fn merge_map_list(
    mut existing: Vec<Value>,
    patch: &[Value],
    merge_key: &str,
    item_meta: &FieldMeta<'_>,
    depth: usize,
) -> Result<Vec<Value>, PatchError> {
    // Directive items first: deletions by merge key, and `$patch: replace`.
    let mut regular = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(item) = item else {
            return Err(bad_arg_type("map", item));
        };
        match item.get(DIRECTIVE_MARKER) {
            None => regular.push(item),
            Some(directive) => match directive.as_str() {
                Some(DELETE_DIRECTIVE) => {
                    let Some(doomed) = item.get(merge_key) else {
                        return Err(no_merge_key(item, merge_key));
                    };
                    // Every duplicate goes, as in Kubernetes.
                    existing.retain(|kept| !values_equal_opt(kept.get(merge_key), Some(doomed)));
                }
                Some(REPLACE_DIRECTIVE) => replace = true,
                Some(MERGE_DIRECTIVE) => return Err(PatchError::MergeDirectiveInList),
                _ => return Err(unknown_patch_type(directive, item)),
            },
        }
    }

    if replace {
        let mut replacement = Vec::with_capacity(regular.len());
        for item in regular {
            if !item.contains_key(merge_key) {
                return Err(no_merge_key(item, merge_key));
            }
            replacement.push(Value::Object(merge_map(
                Map::new(),
                item,
                item_meta.schema,
                depth,
            )?));
        }
        return Ok(replacement);
    }

    let server_order: Vec<Option<Value>> = existing
        .iter()
        .map(|item| item.get(merge_key).cloned())
        .collect();
    let mut patch_order = Vec::with_capacity(regular.len());
    for item in regular {
        let Some(key_value) = item.get(merge_key) else {
            return Err(no_merge_key(item, merge_key));
        };
        patch_order.push(Some(key_value));
        let matching = existing.iter().position(|kept| {
            kept.is_object() && values_equal_opt(kept.get(merge_key), Some(key_value))
        });
        match matching {
            Some(index) => {
                let kept = match std::mem::take(&mut existing[index]) {
                    Value::Object(kept) => kept,
                    _ => Map::new(),
                };
                existing[index] = Value::Object(merge_map(kept, item, item_meta.schema, depth)?);
            }
            None => existing.push(Value::Object(merge_map(
                Map::new(),
                item,
                item_meta.schema,
                depth,
            )?)),
        }
    }
    let server_order: Vec<Option<&Value>> = server_order.iter().map(Option::as_ref).collect();
    Ok(normalize_element_order(
        existing,
        &patch_order,
        &server_order,
        Some(merge_key),
    ))
}

/// `$setElementOrder/<field>`: merges the patch list of `field` (if any) and
/// then orders the result as the directive says (apimachinery's
/// `mergePatchIntoOriginal`).
fn apply_element_order(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    field: &str,
    order: &Value,
    schema: Option<SchemaView<'_>>,
    depth: usize,
) -> Result<(), PatchError> {
    let Value::Array(order) = order else {
        return Err(PatchError::BadPatchFormatForSetElementOrderList);
    };
    let meta = FieldMeta::lookup(schema, field)?;
    let patch_value = patch.get(field);
    let patch_list = match patch_value {
        None => None,
        Some(Value::Array(list)) => Some(list.as_slice()),
        Some(other) => return Err(bad_arg_type("list", other)),
    };
    let existing = match original.get_mut(field) {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => Some(std::mem::take(list)),
        Some(other) => return Err(bad_arg_type("list", other)),
    };
    if existing.is_none() && patch_value.is_none() {
        return Ok(());
    }

    let existing_items = existing.as_deref().unwrap_or_default();
    let merge_key = match element_kind(&[existing_items, patch_list.unwrap_or_default(), order])? {
        Some(ElementKind::Map) => {
            Some(
                meta.merge_key
                    .ok_or_else(|| PatchError::NoMergeKeyDeclared {
                        field: field.to_owned(),
                    })?,
            )
        }
        _ => None,
    };
    if let Some(patch_list) = patch_list {
        validate_element_order(patch_list, order, merge_key)?;
    }

    let server_order: Vec<Option<Value>> = existing_items
        .iter()
        .map(|item| identity(item, merge_key).cloned())
        .collect();
    let merged = match patch_value {
        Some(patch_value) => {
            merge_value(existing.map(Value::Array), patch_value, &meta, field, depth)?
        }
        None => existing.map(Value::Array),
    };
    let Some(Value::Array(merged)) = merged else {
        return Ok(());
    };

    let order: Vec<Option<&Value>> = order.iter().map(|item| identity(item, merge_key)).collect();
    let server_order: Vec<Option<&Value>> = server_order.iter().map(Option::as_ref).collect();
    let ordered = normalize_element_order(merged, &order, &server_order, merge_key);
    original.insert(field.to_owned(), Value::Array(ordered));
    Ok(())
}

/// The non-directive items of the patch list must appear in `order`, in the
/// same relative order (apimachinery's `validatePatchWithSetOrderList`).
fn validate_element_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    let mut pending = patch_list
        .iter()
        .filter(|item| {
            !item
                .as_object()
                .is_some_and(|map| map.contains_key(DIRECTIVE_MARKER))
        })
        .peekable();
    for ordered in order {
        let Some(next) = pending.peek() else { break };
        if same_element(next, ordered, merge_key)? {
            pending.next();
        }
    }
    if pending.peek().is_some() {
        return Err(PatchError::SetElementOrderMismatch {
            patch_list: Value::Array(patch_list.to_vec()).to_string(),
            order_list: Value::Array(order.to_vec()).to_string(),
        });
    }
    Ok(())
}

fn same_element(left: &Value, right: &Value, merge_key: Option<&str>) -> Result<bool, PatchError> {
    match merge_key {
        Some(merge_key) => Ok(values_equal(
            merge_key_value(left, merge_key)?,
            merge_key_value(right, merge_key)?,
        )),
        None => Ok(values_equal(left, right)),
    }
}

fn merge_key_value<'v>(item: &'v Value, merge_key: &str) -> Result<&'v Value, PatchError> {
    let map = item.as_object().ok_or_else(|| bad_arg_type("map", item))?;
    map.get(merge_key)
        .ok_or_else(|| no_merge_key(map, merge_key))
}

/// Orders a merged list as Kubernetes does (apimachinery's
/// `normalizeElementOrder` and `mergeSortedSlice`): the items named in
/// `patch_order` follow that order, the others ("server-only" items) keep their
/// order in the original list, and the two runs are interleaved by their
/// positions in the original list. An item the original list does not hold is
/// taken before a server-only item, so without `$setElementOrder` a new list
/// item lands ahead of the existing ones, exactly as on kube-apiserver.
fn normalize_element_order(
    merged: Vec<Value>,
    patch_order: &[Option<&Value>],
    server_order: &[Option<&Value>],
    merge_key: Option<&str>,
) -> Vec<Value> {
    let position = |order: &[Option<&Value>], item: &Value| {
        let id = identity(item, merge_key);
        order.iter().position(|entry| values_equal_opt(*entry, id))
    };
    let mut from_patch = Vec::new();
    let mut server_only = Vec::new();
    for item in merged {
        let server_position = position(server_order, &item);
        match position(patch_order, &item) {
            Some(patch_position) => from_patch.push((patch_position, server_position, item)),
            None => server_only.push((server_position, item)),
        }
    }
    // Stable sorts; unknown positions go last.
    from_patch.sort_by_key(|(patch_position, _, _)| *patch_position);
    server_only.sort_by_key(|(server_position, _)| server_position.unwrap_or(usize::MAX));

    let mut ordered = Vec::with_capacity(from_patch.len() + server_only.len());
    let mut from_patch = from_patch.into_iter().peekable();
    let mut server_only = server_only.into_iter().peekable();
    loop {
        let take_server_only = match (server_only.peek(), from_patch.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((left, _)), Some((_, right, _))) => {
                matches!((left, right), (Some(left), Some(right)) if left < right)
            }
        };
        let next = if take_server_only {
            server_only.next().map(|(_, item)| item)
        } else {
            from_patch.next().map(|(_, _, item)| item)
        };
        ordered.extend(next);
    }
    ordered
}

/// What identifies a list item: its merge key value, or a primitive itself.
fn identity<'v>(item: &'v Value, merge_key: Option<&str>) -> Option<&'v Value> {
    match merge_key {
        Some(merge_key) => item.get(merge_key),
        None => Some(item),
    }
}

/// `$deleteFromPrimitiveList/<field>`: removes the listed values.
fn delete_from_primitive_list(
    original: &mut Map<String, Value>,
    field: &str,
    doomed: &Value,
) -> Result<(), PatchError> {
    let Value::Array(doomed) = doomed else {
        return Err(PatchError::BadPatchFormatForPrimitiveList);
    };
    if let Some(Value::Array(items)) = original.get_mut(field) {
        items.retain(|item| !doomed.iter().any(|gone| values_equal(item, gone)));
    }
    Ok(())
}

/// JSON equality where `80` and `80.0` are the same number, as they are for
/// apimachinery (which decodes every number into a Go number).
fn values_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(left), Value::Number(right)) => {
            left == right || matches!((left.as_f64(), right.as_f64()), (Some(l), Some(r)) if l == r)
        }
        _ => left == right,
    }
}

fn values_equal_opt(left: Option<&Value>, right: Option<&Value>) -> bool {
    match (left, right) {
        (Some(left), Some(right)) => values_equal(left, right),
        (None, None) => true,
        _ => false,
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Object(_) => "map",
        Value::Array(_) => "list",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::Null => "null",
    }
}

fn bad_arg_type(expected: &'static str, actual: &Value) -> PatchError {
    PatchError::BadArgType {
        expected,
        actual: kind_name(actual),
    }
}

fn no_merge_key(map: &Map<String, Value>, merge_key: &str) -> PatchError {
    PatchError::NoMergeKey {
        map: Value::Object(map.clone()).to_string(),
        merge_key: merge_key.to_owned(),
    }
}

fn unknown_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    PatchError::UnknownPatchType {
        patch_type: directive
            .as_str()
            .map_or_else(|| directive.to_string(), str::to_owned),
        map: Value::Object(map.clone()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A cut-down copy of the Kubernetes OpenAPI v3 document, shaped like the
    /// real one: properties wrapped in `allOf: [{$ref}]` with the patch
    /// extensions beside them, some plain `$ref`s, and maps as
    /// `additionalProperties`.
    fn definitions() -> Map<String, Value> {
        let schemas = json!({
            "io.k8s.api.apps.v1.Deployment": {
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {
                        "allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}],
                        "default": {}
                    },
                    "spec": {
                        "allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}],
                        "default": {}
                    }
                }
            },
            "io.k8s.api.apps.v1.DeploymentSpec": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer"},
                    "strategy": {
                        "allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"}],
                        "default": {},
                        "x-kubernetes-patch-strategy": "retainKeys"
                    },
                    "template": {
                        "allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodTemplateSpec"}],
                        "default": {}
                    }
                }
            },
            "io.k8s.api.apps.v1.DeploymentStrategy": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "rollingUpdate": {
                        "$ref": "#/components/schemas/io.k8s.api.apps.v1.RollingUpdateDeployment"
                    }
                }
            },
            "io.k8s.api.apps.v1.RollingUpdateDeployment": {
                "type": "object",
                "properties": {
                    "maxSurge": {"x-kubernetes-int-or-string": true},
                    "maxUnavailable": {"x-kubernetes-int-or-string": true}
                }
            },
            "io.k8s.api.core.v1.PodTemplateSpec": {
                "type": "object",
                "properties": {
                    "metadata": {
                        "allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]
                    },
                    "spec": {
                        "allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.PodSpec"}]
                    }
                }
            },
            "io.k8s.api.core.v1.PodSpec": {
                "type": "object",
                "properties": {
                    "containers": {
                        "type": "array",
                        "items": {
                            "allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Container"}],
                            "default": {}
                        },
                        "x-kubernetes-list-map-keys": ["name"],
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-patch-merge-key": "name",
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "volumes": {
                        "type": "array",
                        "items": {
                            "allOf": [{"$ref": "#/components/schemas/io.k8s.api.core.v1.Volume"}],
                            "default": {}
                        },
                        "x-kubernetes-patch-merge-key": "name",
                        "x-kubernetes-patch-strategy": "merge,retainKeys"
                    },
                    "tolerations": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/io.k8s.api.core.v1.Toleration"}
                    },
                    "nodeSelector": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "default": ""}
                    }
                }
            },
            "io.k8s.api.core.v1.Container": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "image": {"type": "string"},
                    "args": {"type": "array", "items": {"type": "string", "default": ""}},
                    "ports": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/io.k8s.api.core.v1.ContainerPort"},
                        "x-kubernetes-patch-merge-key": "containerPort",
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "env": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/io.k8s.api.core.v1.EnvVar"},
                        "x-kubernetes-patch-merge-key": "name",
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "volumeMounts": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/io.k8s.api.core.v1.VolumeMount"},
                        "x-kubernetes-patch-merge-key": "mountPath",
                        "x-kubernetes-patch-strategy": "merge"
                    },
                    "resources": {"type": "object"}
                }
            },
            "io.k8s.api.core.v1.ContainerPort": {
                "type": "object",
                "properties": {
                    "containerPort": {"type": "integer"},
                    "name": {"type": "string"},
                    "protocol": {"type": "string"}
                }
            },
            "io.k8s.api.core.v1.EnvVar": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "value": {"type": "string"}}
            },
            "io.k8s.api.core.v1.VolumeMount": {
                "type": "object",
                "properties": {"mountPath": {"type": "string"}, "name": {"type": "string"}}
            },
            "io.k8s.api.core.v1.Toleration": {
                "type": "object",
                "properties": {"key": {"type": "string"}, "effect": {"type": "string"}}
            },
            "io.k8s.api.core.v1.Volume": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "configMap": {"type": "object"},
                    "emptyDir": {"type": "object"}
                }
            },
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "labels": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "default": ""}
                    },
                    "annotations": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "default": ""}
                    },
                    "finalizers": {
                        "type": "array",
                        "items": {"type": "string", "default": ""},
                        "x-kubernetes-list-type": "set",
                        "x-kubernetes-patch-strategy": "merge"
                    }
                }
            }
        });
        match schemas {
            Value::Object(schemas) => schemas,
            _ => Map::new(),
        }
    }

    fn deployment_node() -> Value {
        json!({"$ref": "#/components/schemas/io.k8s.api.apps.v1.Deployment"})
    }

    fn patch_deployment(original: &Value, patch: &Value) -> Result<Value, PatchError> {
        let definitions = definitions();
        let node = deployment_node();
        let schema = SchemaView {
            definitions: &definitions,
            node: &node,
        };
        apply(original, patch, Some(schema))
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "labels": {"app": "web", "tier": "frontend"},
                "finalizers": ["a.example.com/one", "b.example.com/two"]
            },
            "spec": {
                "replicas": 2,
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
                },
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "nginx",
                            "image": "nginx:1.25",
                            "args": ["--port", "80"],
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "MODE", "value": "prod"}, {"name": "LEVEL", "value": "info"}],
                            "resources": {"limits": {"cpu": "500m"}}
                        }],
                        "volumes": [{"name": "config", "configMap": {"name": "web-config"}}]
                    }
                }
            }
        })
    }

    fn in_pod_spec(pod_spec: Value) -> Value {
        json!({"spec": {"template": {"spec": pod_spec}}})
    }

    fn containers(object: &Value) -> &Value {
        &object["spec"]["template"]["spec"]["containers"]
    }

    fn container_names(object: &Value) -> Vec<&str> {
        containers(object)
            .as_array()
            .map(|list| list.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default()
    }

    fn with_sidecar(mut object: Value) -> Value {
        if let Some(list) = object["spec"]["template"]["spec"]["containers"].as_array_mut() {
            list.push(json!({"name": "sidecar", "image": "busybox"}));
        }
        object
    }

    fn contains_directive(value: &Value) -> bool {
        match value {
            Value::Object(map) => map
                .iter()
                .any(|(key, value)| key.starts_with('$') || contains_directive(value)),
            Value::Array(items) => items.iter().any(contains_directive),
            _ => false,
        }
    }

    #[test]
    fn kubectl_reapply_changes_only_the_patched_container_image() {
        let original = deployment();
        let patch = in_pod_spec(json!({
            "$setElementOrder/containers":[{"name":"nginx"}],
            "containers":[{"image":"nginx:1.26","name":"nginx"}]
        }));
        let patched = patch_deployment(&original, &patch).expect("patch applies");

        let mut expected = original.clone();
        expected["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.26");
        assert_eq!(patched, expected);
    }

    #[test]
    fn container_added_with_element_order_lands_where_the_order_says() {
        let patch = in_pod_spec(json!({
            "$setElementOrder/containers":[{"name":"nginx"},{"name":"sidecar"}],
            "containers":[{"name":"sidecar","image":"busybox"}]
        }));
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(container_names(&patched), ["nginx", "sidecar"]);
        assert_eq!(containers(&patched)[0], containers(&deployment())[0]);
        assert_eq!(
            containers(&patched)[1],
            json!({"name":"sidecar","image":"busybox"})
        );
    }

    #[test]
    fn container_added_without_element_order_goes_first_as_on_kube_apiserver() {
        let patch = in_pod_spec(json!({
            "containers":[{"name":"sidecar","image":"busybox"}]
        }));
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(container_names(&patched), ["sidecar", "nginx"]);
    }

    #[test]
    fn container_deleted_by_merge_key_directive() {
        let original = with_sidecar(deployment());
        let patch = in_pod_spec(json!({
            "$setElementOrder/containers":[{"name":"sidecar"}],
            "containers":[{"$patch":"delete","name":"nginx"}]
        }));
        let patched = patch_deployment(&original, &patch).expect("patch applies");
        assert_eq!(
            containers(&patched),
            &json!([{"name":"sidecar","image":"busybox"}])
        );
    }

    #[test]
    fn delete_directive_removes_every_duplicate_of_the_key() {
        let original = in_pod_spec(json!({"containers":[
            {"name":"a"},{"name":"a"},{"name":"b","image":"x"},{"name":"c"},{"name":"c"}
        ]}));
        let patch = in_pod_spec(json!({"containers":[
            {"name":"a","$patch":"delete"},{"name":"c","$patch":"delete"}
        ]}));
        let patched = patch_deployment(&original, &patch).expect("patch applies");
        assert_eq!(containers(&patched), &json!([{"name":"b","image":"x"}]));
    }

    #[test]
    fn env_entries_merge_by_name() {
        let patch = in_pod_spec(json!({"containers":[{
            "name":"nginx",
            "$setElementOrder/env":[{"name":"MODE"},{"name":"LEVEL"},{"name":"EXTRA"}],
            "env":[{"name":"LEVEL","value":"debug"},{"name":"EXTRA","value":"1"}]
        }]}));
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(
            containers(&patched)[0]["env"],
            json!([
                {"name":"MODE","value":"prod"},
                {"name":"LEVEL","value":"debug"},
                {"name":"EXTRA","value":"1"}
            ])
        );
    }

    #[test]
    fn container_args_without_patch_metadata_are_replaced_whole() {
        let patch = in_pod_spec(json!({"containers":[{
            "name":"nginx","args":["--verbose"]
        }]}));
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(containers(&patched)[0]["args"], json!(["--verbose"]));
    }

    #[test]
    fn ports_match_numeric_merge_keys_whatever_their_number_form() {
        let patch = in_pod_spec(json!({"containers":[{
            "name":"nginx","ports":[{"containerPort":80.0,"name":"http"}]
        }]}));
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        let ports = &containers(&patched)[0]["ports"];
        assert_eq!(ports.as_array().map(Vec::len), Some(1), "{ports}");
        assert_eq!(ports[0]["containerPort"].as_f64(), Some(80.0));
        assert_eq!(ports[0]["protocol"], json!("TCP"));
        assert_eq!(ports[0]["name"], json!("http"));
    }

    #[test]
    fn null_deletes_a_label_and_keeps_the_others() {
        let patch = json!({"metadata":{"labels":{"tier":null,"track":"stable"}}});
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(
            patched["metadata"]["labels"],
            json!({"app":"web","track":"stable"})
        );
    }

    #[test]
    fn null_for_an_absent_field_adds_nothing() {
        let patch = json!({"metadata":{"annotations":null},"spec":{"paused":null}});
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(patched, deployment());
    }

    #[test]
    fn replace_directive_replaces_a_map_with_the_rest_of_the_patch() {
        let patch = json!({"metadata":{"labels":{"$patch":"replace","owner":"team-a"}}});
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(patched["metadata"]["labels"], json!({"owner":"team-a"}));
    }

    #[test]
    fn delete_directive_empties_a_map_as_kubernetes_does() {
        let patch = json!({"metadata":{"labels":{"$patch":"delete"}}});
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(patched["metadata"]["labels"], json!({}));
    }

    #[test]
    fn delete_directive_on_an_absent_map_adds_nothing() {
        let patch = json!({"metadata":{"annotations":{"$patch":"delete"}}});
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(patched, deployment());
    }

    #[test]
    fn explicit_merge_directive_merges_as_the_default_does() {
        let patch = json!({"metadata":{"labels":{"$patch":"merge","owner":"team-a"}}});
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(
            patched["metadata"]["labels"],
            json!({"app":"web","tier":"frontend","owner":"team-a"})
        );
    }

    #[test]
    fn retain_keys_drops_rolling_update_when_strategy_becomes_recreate() {
        let patch = json!({"spec":{"strategy":{
            "$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"
        }}});
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(patched["spec"]["strategy"], json!({"type":"Recreate"}));
    }

    #[test]
    fn retain_keys_switches_a_volume_source_inside_a_merging_list() {
        let patch = in_pod_spec(json!({
            "$setElementOrder/volumes":[{"name":"config"}],
            "volumes":[{"$retainKeys":["emptyDir","name"],"emptyDir":{},"name":"config"}]
        }));
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(
            patched["spec"]["template"]["spec"]["volumes"],
            json!([{"name":"config","emptyDir":{}}])
        );
    }

    #[test]
    fn retain_keys_rejects_a_patch_field_it_does_not_list() {
        let patch =
            json!({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{"maxSurge":1}}}});
        assert_eq!(
            patch_deployment(&deployment(), &patch),
            Err(PatchError::BadPatchFormatForRetainKeys)
        );
    }

    #[test]
    fn set_element_order_reorders_containers() {
        let original = with_sidecar(deployment());
        let patch = in_pod_spec(json!({
            "$setElementOrder/containers":[{"name":"sidecar"},{"name":"nginx"}]
        }));
        let patched = patch_deployment(&original, &patch).expect("patch applies");
        assert_eq!(container_names(&patched), ["sidecar", "nginx"]);
        assert_eq!(containers(&patched)[1], containers(&original)[0]);
    }

    #[test]
    fn set_element_order_interleaves_unmentioned_items_by_their_original_places() {
        // Mentioned items take the given order; the others keep theirs and go
        // ahead of any mentioned item that stood after them (mergeSortedSlice).
        let original = in_pod_spec(json!({"containers":[
            {"name":"a"},{"name":"b"},{"name":"c"},{"name":"d"}
        ]}));
        let patch = in_pod_spec(json!({
            "$setElementOrder/containers":[{"name":"d"},{"name":"b"}]
        }));
        let patched = patch_deployment(&original, &patch).expect("patch applies");
        assert_eq!(container_names(&patched), ["a", "c", "d", "b"]);
    }

    #[test]
    fn set_element_order_reorders_primitive_finalizers() {
        let patch = json!({"metadata":{
            "$setElementOrder/finalizers":["b.example.com/two","a.example.com/one"]
        }});
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(
            patched["metadata"]["finalizers"],
            json!(["b.example.com/two", "a.example.com/one"])
        );
    }

    #[test]
    fn set_element_order_that_contradicts_the_patch_list_is_rejected() {
        let original = with_sidecar(deployment());
        let patch = in_pod_spec(json!({
            "$setElementOrder/containers":[{"name":"nginx"},{"name":"sidecar"}],
            "containers":[{"name":"sidecar","image":"b"},{"name":"nginx","image":"n"}]
        }));
        let result = patch_deployment(&original, &patch);
        assert!(
            matches!(result, Err(PatchError::SetElementOrderMismatch { .. })),
            "{result:?}"
        );
    }

    #[test]
    fn finalizers_union_keeps_no_duplicates() {
        let patch = json!({"metadata":{"finalizers":["b.example.com/two","c.example.com/three"]}});
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(
            patched["metadata"]["finalizers"],
            json!([
                "a.example.com/one",
                "b.example.com/two",
                "c.example.com/three"
            ])
        );
    }

    #[test]
    fn finalizer_added_with_element_order_is_appended() {
        let patch = json!({"metadata":{
            "$setElementOrder/finalizers":["a.example.com/one","b.example.com/two","c.example.com/three"],
            "finalizers":["a.example.com/one","c.example.com/three"]
        }});
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(
            patched["metadata"]["finalizers"],
            json!([
                "a.example.com/one",
                "b.example.com/two",
                "c.example.com/three"
            ])
        );
    }

    #[test]
    fn primitive_union_follows_the_patch_order_as_kubernetes_does() {
        // apimachinery's "preserve the order from the patch in a merging int list".
        let original = json!({"metadata":{"finalizers":["1","2","3"]}});
        let patch = json!({"metadata":{"finalizers":["3","1"]}});
        let patched = patch_deployment(&original, &patch).expect("patch applies");
        assert_eq!(patched["metadata"]["finalizers"], json!(["2", "3", "1"]));
    }

    #[test]
    fn delete_from_primitive_list_removes_finalizers() {
        let patch = json!({"metadata":{
            "$deleteFromPrimitiveList/finalizers":["a.example.com/one","never.there"]
        }});
        let patched = patch_deployment(&deployment(), &patch).expect("patch applies");
        assert_eq!(
            patched["metadata"]["finalizers"],
            json!(["b.example.com/two"])
        );
    }

    #[test]
    fn list_replace_directive_replaces_the_whole_container_list() {
        let original = with_sidecar(deployment());
        let patch = in_pod_spec(json!({"containers":[
            {"$patch":"replace"},{"name":"only","image":"alpine"}
        ]}));
        let patched = patch_deployment(&original, &patch).expect("patch applies");
        assert_eq!(
            containers(&patched),
            &json!([{"name":"only","image":"alpine"}])
        );
    }

    #[test]
    fn merging_list_keeps_the_order_of_the_patch() {
        // apimachinery's "preserve the order from the patch in a merging list 2".
        let original = in_pod_spec(json!({"containers":[
            {"name":"1"},{"name":"2","image":"b"},{"name":"3"}
        ]}));
        let patch = in_pod_spec(json!({"containers":[
            {"name":"3","image":"c"},{"name":"1","image":"a"}
        ]}));
        let patched = patch_deployment(&original, &patch).expect("patch applies");
        assert_eq!(
            containers(&patched),
            &json!([{"name":"2","image":"b"},{"name":"3","image":"c"},{"name":"1","image":"a"}])
        );
    }

    #[test]
    fn list_of_maps_without_patch_metadata_is_replaced_whole() {
        let original = in_pod_spec(json!({"tolerations":[{"key":"a"},{"key":"b"}]}));
        let patch = in_pod_spec(json!({"tolerations":[{"key":"c","effect":"NoSchedule"}]}));
        let patched = patch_deployment(&original, &patch).expect("patch applies");
        assert_eq!(
            patched["spec"]["template"]["spec"]["tolerations"],
            json!([{"key":"c","effect":"NoSchedule"}])
        );
    }

    #[test]
    fn without_schema_maps_merge_and_lists_are_replaced() {
        let original = deployment();
        let patch = json!({
            "metadata":{"labels":{"tier":null}},
            "spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.26"}]}}}
        });
        let patched = apply(&original, &patch, None).expect("patch applies");
        assert_eq!(patched["metadata"]["labels"], json!({"app":"web"}));
        assert_eq!(
            containers(&patched),
            &json!([{"name":"nginx","image":"nginx:1.26"}])
        );
        assert_eq!(patched["spec"]["strategy"], original["spec"]["strategy"]);
    }

    #[test]
    fn unknown_field_lists_are_replaced() {
        let original = in_pod_spec(json!({"mystery":[{"name":"a","v":1}]}));
        let patch = in_pod_spec(json!({"mystery":[{"name":"a","w":2}]}));
        let patched = patch_deployment(&original, &patch).expect("patch applies");
        assert_eq!(
            patched["spec"]["template"]["spec"]["mystery"],
            json!([{"name":"a","w":2}])
        );
    }

    #[test]
    fn a_value_of_another_type_replaces_the_original() {
        let original =
            json!({"spec":{"replicas":2,"template":{"spec":{"nodeSelector":{"a":"b"}}}}});
        let patch =
            json!({"spec":{"replicas":{"odd":true},"template":{"spec":{"nodeSelector":"x"}}}});
        let patched = patch_deployment(&original, &patch).expect("patch applies");
        assert_eq!(patched["spec"]["replicas"], json!({"odd":true}));
        assert_eq!(
            patched["spec"]["template"]["spec"]["nodeSelector"],
            json!("x")
        );
    }

    #[test]
    fn directive_keys_never_reach_the_result() {
        let original = json!({"metadata":{"name":"web"}});
        let patch = json!({
            "metadata":{
                "$setElementOrder/finalizers":["x"],
                "finalizers":["x"],
                "labels":{"$patch":"replace","a":"b","gone":null}
            },
            "spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"},"template":{"spec":{
                "$setElementOrder/containers":[{"name":"new"}],
                "containers":[{
                    "name":"new",
                    "$setElementOrder/env":[{"name":"A"}],
                    "env":[{"name":"A","value":"1"},{"name":"B","$patch":"delete"}],
                    "$deleteFromPrimitiveList/args":["x"],
                    "ports":[{"$patch":"replace"},{"containerPort":8080}]
                }],
                "volumes":[{"name":"v","$retainKeys":["name","emptyDir"],"emptyDir":{}}]
            }}}
        });
        let patched = patch_deployment(&original, &patch).expect("patch applies");
        assert!(!contains_directive(&patched), "{patched}");
        assert_eq!(
            patched,
            json!({
                "metadata":{"name":"web","finalizers":["x"],"labels":{"a":"b"}},
                "spec":{"strategy":{"type":"Recreate"},"template":{"spec":{
                    "containers":[{"name":"new","env":[{"name":"A","value":"1"}],"ports":[{"containerPort":8080}]}],
                    "volumes":[{"name":"v","emptyDir":{}}]
                }}}
            })
        );
    }

    #[test]
    fn patch_that_is_not_an_object_is_rejected() {
        for patch in [json!([1, 2]), json!("spec"), json!(null), json!(3)] {
            assert_eq!(
                patch_deployment(&deployment(), &patch),
                Err(PatchError::InvalidJsonDocument)
            );
        }
    }

    #[test]
    fn list_item_without_merge_key_is_rejected() {
        let patch = in_pod_spec(json!({"containers":[{"image":"nginx:1.26"}]}));
        let result = patch_deployment(&deployment(), &patch);
        assert_eq!(
            result,
            Err(PatchError::NoMergeKey {
                map: r#"{"image":"nginx:1.26"}"#.to_owned(),
                merge_key: "name".to_owned(),
            })
        );
        assert_eq!(
            result.map_err(|e| e.to_string()),
            Err(
                r#"map: {"image":"nginx:1.26"} does not contain declared merge key: name"#
                    .to_owned()
            )
        );
    }

    #[test]
    fn unknown_patch_directive_is_rejected() {
        let patch = json!({"metadata":{"labels":{"$patch":"explode"}}});
        assert!(matches!(
            patch_deployment(&deployment(), &patch),
            Err(PatchError::UnknownPatchType { patch_type, .. }) if patch_type == "explode"
        ));
    }

    #[test]
    fn merge_directive_as_a_list_item_is_rejected() {
        let patch = in_pod_spec(json!({"containers":[{"$patch":"merge"}]}));
        assert_eq!(
            patch_deployment(&deployment(), &patch),
            Err(PatchError::MergeDirectiveInList)
        );
    }

    #[test]
    fn merging_list_mixing_maps_and_scalars_is_rejected() {
        let patch = in_pod_spec(json!({"containers":["nginx"]}));
        assert!(matches!(
            patch_deployment(&deployment(), &patch),
            Err(PatchError::ListElementTypesDiffer { .. })
        ));
    }

    #[test]
    fn malformed_directive_values_are_rejected() {
        let cases = [
            (
                json!({"metadata":{"$deleteFromPrimitiveList/finalizers":"a"}}),
                PatchError::BadPatchFormatForPrimitiveList,
            ),
            (
                json!({"metadata":{"$deleteFromPrimitiveList":["a"]}}),
                PatchError::BadPatchFormatForPrimitiveList,
            ),
            (
                json!({"metadata":{"$setElementOrder/finalizers":{"a":1}}}),
                PatchError::BadPatchFormatForSetElementOrderList,
            ),
            (
                json!({"metadata":{"$setElementOrder":[]}}),
                PatchError::BadPatchFormatForSetElementOrderList,
            ),
            (
                json!({"spec":{"strategy":{"$retainKeys":"type"}}}),
                PatchError::BadPatchFormatForRetainKeys,
            ),
        ];
        for (patch, expected) in cases {
            assert_eq!(
                patch_deployment(&deployment(), &patch),
                Err(expected),
                "{patch}"
            );
        }
    }

    #[test]
    fn top_level_directives_apply_to_the_whole_object() {
        let replaced = patch_deployment(
            &deployment(),
            &json!({"$patch":"replace","kind":"Deployment"}),
        );
        assert_eq!(replaced, Ok(json!({"kind":"Deployment"})));
        let deleted = patch_deployment(&deployment(), &json!({"$patch":"delete"}));
        assert_eq!(deleted, Ok(json!({})));
    }

    #[test]
    fn self_referencing_schema_does_not_loop() {
        let definitions = match json!({
            "Loop": {"allOf": [{"$ref": "#/components/schemas/Loop"}]}
        }) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let node = json!({"$ref": "#/components/schemas/Loop"});
        let schema = SchemaView {
            definitions: &definitions,
            node: &node,
        };
        let patched = apply(&json!({"a":[1]}), &json!({"a":[2]}), Some(schema));
        assert_eq!(patched, Ok(json!({"a":[2]})));
    }

    #[test]
    fn invalid_patch_strategy_in_the_schema_is_reported() {
        let definitions = Map::new();
        let node = json!({"properties":{"a":{"x-kubernetes-patch-strategy":"merge,replace"}}});
        let schema = SchemaView {
            definitions: &definitions,
            node: &node,
        };
        assert_eq!(
            apply(&json!({"a":[1]}), &json!({"a":[2]}), Some(schema)),
            Err(PatchError::UnexpectedPatchStrategy(
                "merge,replace".to_owned()
            ))
        );
    }

    #[test]
    fn excessive_nesting_is_an_error_not_a_stack_overflow() {
        let mut patch = json!({"leaf": 1});
        for _ in 0..(MAX_DEPTH + 10) {
            patch = json!({ "nested": patch });
        }
        assert_eq!(
            apply(&json!({}), &patch, None),
            Err(PatchError::TooDeep { max: MAX_DEPTH })
        );
    }

    #[test]
    fn odd_inputs_never_panic() {
        let originals = [
            deployment(),
            with_sidecar(deployment()),
            in_pod_spec(json!({"containers":[1, "x", null, {"image":"no-name"}]})),
            json!({"metadata":{"finalizers":{"not":"a list"},"labels":["x"]}}),
            json!(null),
        ];
        let patches = [
            in_pod_spec(
                json!({"containers":[{"name":"nginx","$patch":"delete"},{"$patch":"replace"}]}),
            ),
            in_pod_spec(
                json!({"$setElementOrder/containers":[1,{"name":"x"}],"containers":[{"name":"x"}]}),
            ),
            in_pod_spec(json!({"$setElementOrder/containers":[{"name":"x"}],"containers":"x"})),
            in_pod_spec(json!({"containers":[[1]]})),
            in_pod_spec(json!({"containers":[{"$patch":7,"name":"x"}]})),
            in_pod_spec(json!({"containers":[{"$patch":"delete"}]})),
            json!({"metadata":{"$setElementOrder/finalizers":[{"a":1}],"finalizers":[null, 1, "x"]}}),
            json!({"metadata":{"$setElementOrder/labels":["a"],"labels":{"$patch":null}}}),
            json!({"metadata":{"$deleteFromPrimitiveList/finalizers":[{"x":[]}],"$retainKeys":[1,null]}}),
            json!({"$setElementOrder/":[],"$deleteFromPrimitiveList/":[],"":null}),
            json!({"spec":{"strategy":{"$retainKeys":[],"$patch":"replace"}}}),
        ];
        for original in &originals {
            for patch in &patches {
                let _ = patch_deployment(original, patch);
                let _ = apply(original, patch, None);
            }
        }
    }
}
