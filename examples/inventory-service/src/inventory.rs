//! The service's state: units in stock per SKU, and its errors (plain application errors:
//! the handlers return them with `?`, no `map_err`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// A SKU: `SKU-` and 1 to 8 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sku(String);

impl Sku {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Sku, InventoryError> {
        let digits = text.strip_prefix("SKU-").unwrap_or("");
        if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InventoryError::BadSku(text.to_string()));
        }
        Ok(Sku(text.to_string()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What can go wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryError {
    /// Not a SKU at all: the message can never be handled.
    BadSku(String),
    /// A SKU this warehouse does not stock.
    UnknownSku(String),
    /// Not enough units now; a later delivery may find more (after a stock adjustment).
    OutOfStock {
        /// The SKU.
        sku: String,
        /// Units asked for.
        wanted: u32,
        /// Units available.
        available: u32,
    },
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InventoryError::BadSku(s) => write!(f, "{s:?} is not a SKU (SKU-<digits>)"),
            InventoryError::UnknownSku(s) => write!(f, "{s} is not stocked here"),
            InventoryError::OutOfStock {
                sku,
                wanted,
                available,
            } => write!(f, "{sku}: {wanted} wanted, {available} available"),
        }
    }
}

impl std::error::Error for InventoryError {}

/// Units in stock per SKU. Cheap to clone; clones share the state.
#[derive(Debug, Clone, Default)]
pub struct Inventory(Arc<Mutex<HashMap<Sku, u32>>>);

impl Inventory {
    /// An inventory holding `stock`.
    pub fn with_stock<'a>(
        stock: impl IntoIterator<Item = (&'a str, u32)>,
    ) -> Result<Self, InventoryError> {
        let mut map = HashMap::new();
        for (sku, units) in stock {
            map.insert(Sku::parse(sku)?, units);
        }
        Ok(Inventory(Arc::new(Mutex::new(map))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Sku, u32>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Units of `sku` in stock.
    pub fn units(&self, sku: &Sku) -> Option<u32> {
        self.lock().get(sku).copied()
    }

    /// Takes `quantity` units; returns what is left.
    pub fn reserve(&self, sku: &Sku, quantity: u32) -> Result<u32, InventoryError> {
        let mut stock = self.lock();
        let units = stock
            .get_mut(sku)
            .ok_or_else(|| InventoryError::UnknownSku(sku.as_str().to_string()))?;
        if *units < quantity {
            return Err(InventoryError::OutOfStock {
                sku: sku.as_str().to_string(),
                wanted: quantity,
                available: *units,
            });
        }
        *units -= quantity;
        Ok(*units)
    }

    /// Adds `delta` units (floored at zero); a SKU not stocked yet is added.
    pub fn adjust(&self, sku: Sku, delta: i64) -> u32 {
        let mut stock = self.lock();
        let units = stock.entry(sku).or_insert(0);
        let next = (i64::from(*units) + delta).clamp(0, i64::from(u32::MAX));
        *units = next as u32;
        *units
    }
}
