//! The tags the historian knows, by path: what a read needs to turn a path into a
//! measurement and tag filter, and rows back into samples of the right type.

use std::{collections::HashMap, sync::Arc};

use model::{DataType, Site, Tag, Value};

/// How values of a signal come back from InfluxDB, where numbers are all floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Float,
    Int,
    Bool,
    Text,
}

impl From<DataType> for Kind {
    fn from(d: DataType) -> Self {
        match d {
            DataType::Double => Kind::Float,
            DataType::Int => Kind::Int,
            DataType::Bool => Kind::Bool,
            DataType::String => Kind::Text,
        }
    }
}

impl Kind {
    /// The kind a value shows; a null shows none.
    pub(crate) fn of(v: &Value) -> Option<Kind> {
        Some(match v {
            Value::Bool(_) => Kind::Bool,
            Value::Int(_) => Kind::Int,
            Value::Float(_) => Kind::Float,
            Value::Text(_) => Kind::Text,
            Value::Null => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Known {
    pub(crate) tag: Arc<Tag>,
    /// From the plant model (authoritative) or from the values written through this
    /// historian; `None`: numbers come back as floats.
    pub(crate) kind: Option<Kind>,
    configured: bool,
}

/// The plant's tags, given to [`super::InfluxHistorian::open`]. Tags met in writes and
/// reads are added as the historian runs.
#[derive(Debug, Clone, Default)]
pub struct TagCatalog {
    pub(crate) by_path: HashMap<String, Known>,
}

impl TagCatalog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every signal of the sites, with its data type: integers and booleans are read
    /// back as such.
    pub fn from_sites<'a>(sites: impl IntoIterator<Item = &'a Site>) -> Self {
        let mut c = Self::new();
        for site in sites {
            for (_, _, signal) in site.signals() {
                c.by_path.insert(
                    signal.tag.path(),
                    Known {
                        tag: signal.tag.clone(),
                        kind: Some(signal.data_type.into()),
                        configured: true,
                    },
                );
            }
        }
        c
    }

    /// Tags without data types: numbers are read back as floats unless a write through
    /// this historian showed their type.
    pub fn from_tags(tags: impl IntoIterator<Item = Arc<Tag>>) -> Self {
        let mut c = Self::new();
        for tag in tags {
            c.by_path.insert(
                tag.path(),
                Known {
                    tag,
                    kind: None,
                    configured: false,
                },
            );
        }
        c
    }

    pub fn len(&self) -> usize {
        self.by_path.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_path.is_empty()
    }

    pub(crate) fn get(&self, path: &str) -> Option<&Known> {
        self.by_path.get(path)
    }

    /// Notes a tag seen in a write, with the type of its value, unless the plant model
    /// already describes it.
    pub(crate) fn learn(&mut self, path: String, tag: &Arc<Tag>, kind: Option<Kind>) {
        match self.by_path.get_mut(&path) {
            Some(k) if k.configured => {}
            Some(k) => {
                k.tag = tag.clone();
                if kind.is_some() {
                    k.kind = kind;
                }
            }
            None => {
                self.by_path.insert(
                    path,
                    Known {
                        tag: tag.clone(),
                        kind,
                        configured: false,
                    },
                );
            }
        }
    }

    /// Whether a write of `tag` with a value of `kind` would change nothing here.
    pub(crate) fn knows(&self, path: &str, kind: Kind) -> bool {
        self.by_path
            .get(path)
            .is_some_and(|k| k.configured || k.kind == Some(kind))
    }
}
