//! IndexedDB's events as futures, and its errors as `StoreError`s.
//!
//! A request or transaction reports its outcome through `success`/`error` (`complete`/`abort`)
//! events. Installing a promise's own `resolve`/`reject` functions as those handlers turns it into
//! a `JsFuture` with no Rust closure allocated per request. The promise settles while the event is
//! being dispatched and wasm-bindgen-futures polls in a microtask of that dispatch, when the
//! transaction is still active: a continuation may issue the next request (a cursor step) in it.

use js_sys::{ArrayBuffer, Promise, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{DomException, IdbRequest, IdbTransaction};

use hearth_store::StoreError;

/// A request whose outcome is being awaited.
///
/// The handlers are installed when this is created, so create it right after issuing the request
/// (before any `await`): a request that completes while nobody listens would never resolve.
pub(crate) struct Pending {
    request: IdbRequest,
    outcome: JsFuture,
}

impl Pending {
    pub(crate) fn new(request: &IdbRequest) -> Pending {
        let promise = Promise::new(&mut |resolve, reject| {
            request.set_onsuccess(Some(&resolve));
            request.set_onerror(Some(&reject));
        });
        Pending { request: request.clone(), outcome: JsFuture::from(promise) }
    }

    /// The request's result, or the `DOMException` it failed with.
    pub(crate) async fn result(self) -> Result<JsValue, JsValue> {
        match self.outcome.await {
            Ok(_) => self.request.result(),
            Err(event) => {
                Err(self.request.error().ok().flatten().map(JsValue::from).unwrap_or(event))
            }
        }
    }
}

/// Resolves on the transaction's `complete` event, fails on its `abort` event.
///
/// An `error` event of one of its requests bubbles up to the transaction and, unhandled, aborts
/// it; so `abort` is the one failure signal to wait for.
pub(crate) fn settled(transaction: &IdbTransaction) -> JsFuture {
    JsFuture::from(Promise::new(&mut |resolve, reject| {
        transaction.set_oncomplete(Some(&resolve));
        transaction.set_onabort(Some(&reject));
    }))
}

/// A byte string as an IndexedDB binary key or value (copied into a JavaScript buffer).
pub(crate) fn bytes_to_js(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).into()
}

/// A stored value back into bytes. Values are written as `Uint8Array`s; anything else was put
/// there by someone other than this backend.
pub(crate) fn value_to_bytes(value: &JsValue) -> Result<Vec<u8>, StoreError> {
    match value.dyn_ref::<Uint8Array>() {
        Some(array) => Ok(array.to_vec()),
        None => Err(StoreError::Corrupt(format!("an IndexedDB value is not bytes: {value:?}"))),
    }
}

/// A key back into bytes: IndexedDB hands binary keys out as `ArrayBuffer`s.
pub(crate) fn key_to_bytes(key: &JsValue) -> Result<Vec<u8>, StoreError> {
    if key.is_instance_of::<ArrayBuffer>() {
        Ok(Uint8Array::new(key).to_vec())
    } else {
        Err(StoreError::Corrupt(format!("an IndexedDB key is not binary: {key:?}")))
    }
}

/// A failed IndexedDB call as a `StoreError::Backend`: what was being done, the exception's
/// name and message, and for the failures a user can act on, what to do.
pub(crate) fn failure(doing: &str, error: &JsValue) -> StoreError {
    let (name, message) = if let Some(exception) = error.dyn_ref::<DomException>() {
        (exception.name(), exception.message())
    } else if let Some(error) = error.dyn_ref::<js_sys::Error>() {
        (String::from(error.name()), String::from(error.message()))
    } else if let Some(text) = error.as_string() {
        (String::from("Error"), text)
    } else {
        (String::from("Error"), format!("{error:?}"))
    };
    let hint = match name.as_str() {
        "QuotaExceededError" => " (the browser's storage quota for this site is used up)",
        "InvalidStateError" => {
            " (the database connection is closed: another tab may be upgrading or deleting it; \
             reload the page)"
        }
        "UnknownError" => " (the browser could not read or write its storage)",
        _ => "",
    };
    StoreError::Backend(format!("IndexedDB {doing} failed: {name}: {message}{hint}"))
}

/// A failure of the transaction itself: its `error` is the exception that aborted it, or null if
/// it was aborted deliberately.
pub(crate) fn transaction_failure(doing: &str, transaction: &IdbTransaction) -> StoreError {
    match transaction.error() {
        Some(exception) => failure(doing, &exception.into()),
        None => {
            StoreError::Backend(format!("IndexedDB {doing} failed: the transaction was aborted"))
        }
    }
}
