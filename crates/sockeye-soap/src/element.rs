//! The element tree that bodies are read into and written from.

/// An XML element reduced to what a document/literal SOAP body carries: a namespace-qualified
/// name, text and child elements. Attributes, comments and prefixes are not kept; prefixes
/// are arbitrary (zeep writes `soap-env:`, .NET `s:`), so only the namespace means anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Element {
    /// The namespace name, `None` for an unqualified element.
    pub namespace: Option<String>,
    /// The local name (an XML NCName: no prefix, no colon).
    pub name: String,
    /// The character data directly inside the element, references resolved and line ends
    /// normalised. Whitespace between child elements is indentation, not content, so an
    /// element with children and only whitespace between them has empty text.
    pub text: String,
    /// The child elements, in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// An element with no text and no children.
    pub fn new(namespace: Option<&str>, name: &str) -> Self {
        Element {
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
            text: String::new(),
            children: Vec::new(),
        }
    }

    /// The same element with text `t` (written escaped; characters XML 1.0 cannot carry
    /// become U+FFFD).
    pub fn with_text(mut self, t: impl Into<String>) -> Self {
        self.text = t.into();
        self
    }

    /// The same element with `c` appended to its children.
    pub fn with_child(mut self, c: Element) -> Self {
        self.children.push(c);
        self
    }

    /// The first child with local name `local`, in any namespace: within one document/literal
    /// body the local names are unambiguous, and matching on them spares every caller the
    /// namespace.
    pub fn child(&self, local: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == local)
    }

    /// Every child with local name `local`, in document order (a `maxOccurs="unbounded"`
    /// element).
    pub fn children_named<'a>(&'a self, local: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == local)
    }
}
