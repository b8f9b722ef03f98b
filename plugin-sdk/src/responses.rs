//! Small response and parameter types every plugin needs.

use poem_openapi::ApiResponse;

use crate::ApiError;

/// `204 No Content`.
#[derive(Debug, ApiResponse)]
pub enum NoContent {
    /// Done; nothing to return.
    #[oai(status = 204)]
    NoContent,
}

/// The default page size of `?limit=`.
pub fn default_limit() -> u64 {
    10
}

/// The default offset of `?skip=`.
pub fn default_skip() -> u64 {
    0
}

/// Checks `?limit=` (1–100) and returns `(skip, limit)`; anything else is a 422 naming the
/// parameter. Clients page with `skip=page*limit&limit=limit` and stop at a short page.
pub fn page(skip: u64, limit: u64) -> Result<(u64, u64), ApiError> {
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid_field(
            &["query", "limit"],
            "Input should be between 1 and 100",
            serde_json::Value::from(limit),
        ));
    }
    Ok((skip, limit))
}

/// The bound of [`Count`]: 2^31 − 1, far beyond any page offset or star count, and exact in
/// every JSON parser and database integer.
pub const MAX_COUNT: u64 = (1 << 31) - 1;

/// `?limit=` (and other "how many, at most" inputs such as `top_k`): a whole number from 1 to
/// 100, 10 by default. Its schema declares exactly the bounds its parser enforces, so the
/// OpenAPI document and the server agree; anything else is a 422 naming the parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(pub u64);

/// `?skip=` and other counts: a whole number from 0 to [`MAX_COUNT`], 0 by default. Its schema
/// declares exactly the bounds its parser enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count(pub u64);

impl Default for Limit {
    fn default() -> Self {
        Self(default_limit())
    }
}

impl Limit {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl Count {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A field the schema declares required, whose absence (or `null`) the service reports: a 422
/// whose `detail` names the field ("Field required"), the shape SyftHub clients read, where
/// the framework's parser could only name the whole body. `None` when absent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Required<T>(pub Option<T>);

impl<T> Required<T> {
    /// The value, if it was sent.
    pub fn into_option(self) -> Option<T> {
        self.0
    }
}

impl<T: poem_openapi::types::Type> poem_openapi::types::Type for Required<T> {
    const IS_REQUIRED: bool = true;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> std::borrow::Cow<'static, str> {
        T::name()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_ref().and_then(T::as_raw_value)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        match &self.0 {
            Some(value) => value.raw_element_iter(),
            None => Box::new(std::iter::empty()),
        }
    }
}

impl<T: poem_openapi::types::ParseFromJSON> poem_openapi::types::ParseFromJSON for Required<T> {
    fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
        match value {
            None | Some(serde_json::Value::Null) => Ok(Self(None)),
            value => T::parse_from_json(value)
                .map(|value| Self(Some(value)))
                .map_err(poem_openapi::types::ParseError::propagate),
        }
    }
}

impl<T: poem_openapi::types::ToJSON> poem_openapi::types::ToJSON for Required<T> {
    fn to_json(&self) -> Option<serde_json::Value> {
        self.0.as_ref().and_then(T::to_json)
    }
}

/// A whole number type with declared, enforced bounds.
trait Bounded: poem_openapi::types::Type + Sized {
    const NAME: &'static str;
    const MIN: u64;
    const MAX: u64;
    fn from_u64(value: u64) -> Self;
    fn value(&self) -> u64;

    fn schema() -> poem_openapi::registry::MetaSchemaRef {
        let mut schema = poem_openapi::registry::MetaSchema::new_with_format("integer", "int64");
        schema.minimum = Some(Self::MIN as f64);
        schema.maximum = Some(Self::MAX as f64);
        poem_openapi::registry::MetaSchemaRef::Inline(Box::new(schema))
    }

    fn parse(value: Option<u64>) -> poem_openapi::types::ParseResult<Self> {
        match value {
            Some(value) if (Self::MIN..=Self::MAX).contains(&value) => Ok(Self::from_u64(value)),
            _ => Err(poem_openapi::types::ParseError::custom(format!(
                "Input should be a whole number between {} and {}",
                Self::MIN,
                Self::MAX
            ))),
        }
    }
}

impl Bounded for Limit {
    const NAME: &'static str = "limit";
    const MIN: u64 = 1;
    const MAX: u64 = 100;
    fn from_u64(value: u64) -> Self {
        Self(value)
    }
    fn value(&self) -> u64 {
        self.0
    }
}

impl Bounded for Count {
    const NAME: &'static str = "count";
    const MIN: u64 = 0;
    const MAX: u64 = MAX_COUNT;
    fn from_u64(value: u64) -> Self {
        Self(value)
    }
    fn value(&self) -> u64 {
        self.0
    }
}

macro_rules! bounded_type {
    ($name:ty) => {
        impl poem_openapi::types::Type for $name {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> std::borrow::Cow<'static, str> {
                format!("integer({})", <$name as Bounded>::NAME).into()
            }

            fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
                <$name as Bounded>::schema()
            }

            fn as_raw_value(&self) -> Option<&Self::RawValueType> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }
        }

        impl poem_openapi::types::ParseFromParameter for $name {
            fn parse_from_parameter(value: &str) -> poem_openapi::types::ParseResult<Self> {
                <$name as Bounded>::parse(value.parse().ok())
            }
        }

        impl poem_openapi::types::ParseFromJSON for $name {
            fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
                match value {
                    Some(serde_json::Value::Number(number)) => <$name as Bounded>::parse(number.as_u64()),
                    Some(other) => Err(poem_openapi::types::ParseError::expected_type(other)),
                    None => Err(poem_openapi::types::ParseError::expected_input()),
                }
            }
        }

        impl poem_openapi::types::ToJSON for $name {
            fn to_json(&self) -> Option<serde_json::Value> {
                Some(serde_json::Value::from(self.value()))
            }
        }
    };
}

bounded_type!(Limit);
bounded_type!(Count);

/// The schema of a [`Declared`] value: what the service checks, stated for the OpenAPI document.
pub trait Declaration {
    /// The schema's name in the document (e.g. `Policy`).
    const NAME: &'static str;
    /// The schema.
    fn schema() -> poem_openapi::registry::MetaSchema;
}

/// A JSON value taken as the client sent it, whose OpenAPI schema `D` states the rules the
/// service then checks, naming each problem's field in a 422 (the shape SyftHub clients read;
/// a parser error could only name the whole body). Like `declared_string!`, for objects.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared<D>(pub serde_json::Value, std::marker::PhantomData<D>);

impl<D> Declared<D> {
    /// The value as sent.
    pub fn into_inner(self) -> serde_json::Value {
        self.0
    }
}

impl<D: Declaration + Send + Sync> poem_openapi::types::Type for Declared<D> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> std::borrow::Cow<'static, str> {
        D::NAME.into()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        poem_openapi::registry::MetaSchemaRef::Reference(D::NAME.to_owned())
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        registry.create_schema::<Self, _>(D::NAME.to_owned(), |_| D::schema());
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(std::iter::once(self))
    }
}

impl<D: Declaration + Send + Sync> poem_openapi::types::ParseFromJSON for Declared<D> {
    fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
        Ok(Self(value.unwrap_or_default(), std::marker::PhantomData))
    }
}

impl<D: Declaration + Send + Sync> poem_openapi::types::ToJSON for Declared<D> {
    fn to_json(&self) -> Option<serde_json::Value> {
        Some(self.0.clone())
    }
}

/// The `type` of the `additionalProperties` schema that [`closed_object`] sets; the host's
/// OpenAPI pass writes it as `additionalProperties: false`, which poem-openapi cannot express.
pub const CLOSED_OBJECT: &str = "x-closed-object";

/// Declares that `schema` (an object) allows no properties beyond those it lists.
pub fn closed_object(schema: &mut poem_openapi::registry::MetaSchema) {
    let marker = poem_openapi::registry::MetaSchema::new(CLOSED_OBJECT);
    schema.additional_properties = Some(Box::new(poem_openapi::registry::MetaSchemaRef::Inline(Box::new(marker))));
}

/// A list whose schema declares at most `MAX` items, parsed whole whatever its length: the
/// service checks the bound and names the field in its 422 (a parser error could only name the
/// whole body).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BoundedList<T, const MAX: usize>(pub Vec<T>);

impl<T, const MAX: usize> BoundedList<T, MAX> {
    /// The items.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T: poem_openapi::types::Type, const MAX: usize> poem_openapi::types::Type for BoundedList<T, MAX> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = T::RawValueType;

    fn name() -> std::borrow::Cow<'static, str> {
        format!("[{}; at most {MAX}]", T::name()).into()
    }

    fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
        let mut schema = poem_openapi::registry::MetaSchema::new("array");
        schema.items = Some(Box::new(T::schema_ref()));
        schema.max_items = Some(MAX);
        poem_openapi::registry::MetaSchemaRef::Inline(Box::new(schema))
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.0.iter().filter_map(T::as_raw_value))
    }
}

impl<T: poem_openapi::types::ParseFromJSON, const MAX: usize> poem_openapi::types::ParseFromJSON
    for BoundedList<T, MAX>
{
    fn parse_from_json(value: Option<serde_json::Value>) -> poem_openapi::types::ParseResult<Self> {
        Vec::<T>::parse_from_json(value).map(Self).map_err(poem_openapi::types::ParseError::propagate)
    }
}

impl<T: poem_openapi::types::ToJSON, const MAX: usize> poem_openapi::types::ToJSON for BoundedList<T, MAX> {
    fn to_json(&self) -> Option<serde_json::Value> {
        self.0.to_json()
    }
}
