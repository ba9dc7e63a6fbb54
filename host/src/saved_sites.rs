//! Saved sites on the page's side: which one to open, holding it (one tab
//! per site, by Web Locks), and listing, renaming and deleting them. The
//! files themselves are the storage worker's (worker/src/storage.rs); where
//! they live is `protocol::storage`.

use crate::util::{error, message_of};
use js_sys::{Array, Function, Object, Promise};
use protocol::storage::{check_slug, lock_name, LAST_SITE_KEY, SITES_PATH};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{FileSystemDirectoryHandle, FileSystemGetDirectoryOptions, FileSystemRemoveOptions};

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks` (Web Locks; not in web-sys's stable set).
    type LockManager;
    #[wasm_bindgen(method, js_name = request)]
    fn request_with_options(this: &LockManager, name: &str, options: &Object, callback: &Function) -> Promise;
    /// `FileSystemFileHandle.move(directory, name)` (OPFS; not in web-sys).
    /// Chromium moves files, not directories.
    type MovableFile;
    #[wasm_bindgen(method, catch, js_name = move)]
    fn move_to(this: &MovableFile, directory: &FileSystemDirectoryHandle, name: &str) -> Result<Promise, JsValue>;
}

fn navigator() -> Result<web_sys::Navigator, JsValue> {
    Ok(web_sys::window().ok_or_else(|| error("no window"))?.navigator())
}

fn lock_manager() -> Option<LockManager> {
    let navigator: JsValue = navigator().ok()?.into();
    let locks = js_sys::Reflect::get(&navigator, &"locks".into()).ok()?;
    (!locks.is_undefined()).then(|| locks.unchecked_into())
}

/// Why this page cannot save sites, if it cannot: no OPFS or Web Locks in
/// this browser, or storage denied to this context (a third-party iframe
/// where the browser blocks its storage).
pub async fn unavailable() -> Option<String> {
    if storage_manager().is_none() || lock_manager().is_none() {
        return Some(NO_STORAGE.into());
    }
    if let Err(e) = boot_sites_dir().await {
        return Some(format!("the browser denies this page its storage ({})", message_of(&e)));
    }
    if let Err(e) = is_held_elsewhere("-").await {
        return Some(format!("the browser denies this page Web Locks ({})", message_of(&e)));
    }
    None
}

const NO_STORAGE: &str = "this browser has no origin private file system or Web Locks";

/// `navigator.storage`, if it can open the origin private file system
/// (WebKitGTK leaves `navigator.storage` undefined by default).
fn storage_manager() -> Option<web_sys::StorageManager> {
    let navigator: JsValue = navigator().ok()?.into();
    let storage = js_sys::Reflect::get(&navigator, &"storage".into()).ok().filter(|s| s.is_object())?;
    let get_directory = js_sys::Reflect::get(&storage, &"getDirectory".into()).ok()?;
    get_directory.is_function().then(|| storage.unchecked_into())
}

thread_local! {
    /// `boot_sites_dir`, once opened: a boot asks for it twice
    /// (`likely_reopened`, `unavailable`), and each opening is a few OPFS
    /// calls, which take tens of ms while php.wasm downloads. Only the boot
    /// uses it: the page's later calls open the folder again, so clearing
    /// the site's data while the page is open leaves no stale handle.
    static BOOT_SITES_DIR: std::cell::RefCell<Option<FileSystemDirectoryHandle>> = const { std::cell::RefCell::new(None) };
}

async fn boot_sites_dir() -> Result<FileSystemDirectoryHandle, JsValue> {
    if let Some(dir) = BOOT_SITES_DIR.with(|d| d.borrow().clone()) {
        return Ok(dir);
    }
    let dir = sites_dir().await?;
    BOOT_SITES_DIR.with(|d| *d.borrow_mut() = Some(dir.clone()));
    Ok(dir)
}

/// The folder holding every saved site (created on first use).
async fn sites_dir() -> Result<FileSystemDirectoryHandle, JsValue> {
    let storage = storage_manager().ok_or_else(|| js_sys::Error::new(NO_STORAGE))?;
    let mut dir: FileSystemDirectoryHandle = JsFuture::from(storage.get_directory()).await?.unchecked_into();
    let create = FileSystemGetDirectoryOptions::new();
    create.set_create(true);
    for name in SITES_PATH {
        dir = JsFuture::from(dir.get_directory_handle_with_options(name, &create)).await?.unchecked_into();
    }
    Ok(dir)
}

/// Takes site `slug`'s lock, waiting `LOCK_WAIT_MS` for whoever holds it
/// to let go; it is held until the page goes away. False if another tab (or
/// this one) still holds it then.
async fn try_hold(slug: &str) -> Result<bool, JsValue> {
    let locks = lock_manager().ok_or_else(|| error("this browser has no Web Locks"))?;
    let (granted_tx, granted_rx) = futures_channel::oneshot::channel::<bool>();
    let granted_tx = std::rc::Rc::new(std::cell::RefCell::new(Some(granted_tx)));
    let answer = {
        let granted_tx = granted_tx.clone();
        move |granted: bool| {
            if let Some(tx) = granted_tx.borrow_mut().take() {
                let _ = tx.send(granted);
            }
        }
    };
    let on_granted = answer.clone();
    let callback = Closure::<dyn FnMut(JsValue) -> JsValue>::new(move |_lock: JsValue| {
        on_granted(true);
        // Held while this promise is pending: forever, for the page's life.
        Promise::new(&mut |_, _| {}).into()
    });
    let options = Object::new();
    crate::util::set(&options, "signal", web_sys::AbortSignal::timeout_with_u32(protocol::storage::LOCK_WAIT_MS));
    let requested = locks.request_with_options(&lock_name(slug), &options, callback.as_ref().unchecked_ref());
    callback.forget(); // the lock (and so the callback's promise) lives as long as the page
    // Not granted in time: the request is aborted and the callback never runs.
    let timed_out = Closure::<dyn FnMut(JsValue)>::new(move |_why: JsValue| answer(false));
    let _ = requested.catch(&timed_out);
    timed_out.forget();
    Ok(granted_rx.await.unwrap_or(false))
}

async fn is_held_elsewhere(slug: &str) -> Result<bool, JsValue> {
    // Taking it and letting go at once answers "is anyone holding it?".
    let locks = lock_manager().ok_or_else(|| error("this browser has no Web Locks"))?;
    let options = Object::new();
    crate::util::set(&options, "ifAvailable", true);
    let callback = Closure::once_into_js(|lock: JsValue| JsValue::from_bool(lock.is_null()));
    let held = JsFuture::from(locks.request_with_options(&lock_name(slug), &options, callback.unchecked_ref())).await?;
    Ok(held.as_bool().unwrap_or(true))
}

fn last_site() -> Option<String> {
    let storage = web_sys::window()?.local_storage().ok()??;
    storage.get_item(LAST_SITE_KEY).ok()?.filter(|s| check_slug(s).is_ok())
}

fn remember(slug: &str) {
    if let Some(Ok(Some(storage))) = web_sys::window().map(|w| w.local_storage()) {
        let _ = storage.set_item(LAST_SITE_KEY, slug);
    }
}

/// The site `claim` will likely open, if it has saved files: it then
/// reopens, and the boot need not download the site (the storage worker
/// fetches it should it not reopen after all). `None` when in doubt.
pub async fn likely_reopened(requested: Option<String>) -> Option<String> {
    let slug = requested.or_else(last_site)?;
    let site: FileSystemDirectoryHandle = JsFuture::from(boot_sites_dir().await.ok()?.get_directory_handle(&slug)).await.ok()?.unchecked_into();
    for name in protocol::storage::LOG_FILES {
        let Ok(handle) = JsFuture::from(site.get_file_handle(name)).await else { continue };
        let handle: web_sys::FileSystemFileHandle = handle.unchecked_into();
        let file: web_sys::File = JsFuture::from(handle.get_file()).await.ok()?.unchecked_into();
        if file.size() > 0.0 {
            return Some(slug);
        }
    }
    None
}

/// The site this page opens: `requested`, else the one this browser
/// opened last if no other tab has it, else a new one. Holds its lock, or
/// fails clearly when another tab has the requested site open.
pub async fn claim(requested: Option<String>) -> Result<String, JsValue> {
    let new_name = || format!("site-{:06x}", (js_sys::Math::random() * 16_777_216.0) as u32);
    let slug = match requested {
        Some(slug) => {
            check_slug(&slug).map_err(error)?;
            if !try_hold(&slug).await? {
                return Err(error(format!(
                    "The saved site \"{slug}\" is open in another tab or window. Close it there, or open another site (?site-slug=NAME)."
                )));
            }
            slug
        }
        None => {
            let mut slug = last_site().unwrap_or_else(new_name);
            while !try_hold(&slug).await? {
                slug = new_name();
            }
            slug
        }
    };
    remember(&slug);
    Ok(slug)
}

/// A name for a site imported from the file `file_name` that no saved
/// site has (`protocol::storage::slug_for_import`).
#[wasm_bindgen(js_name = slugForImport)]
pub async fn slug_for_import(file_name: String) -> Result<String, JsValue> {
    let taken = saved_slugs(&sites_dir().await?).await?;
    Ok(protocol::storage::slug_for_import(&file_name, &taken))
}

/// The slugs of every saved site, sorted.
async fn saved_slugs(dir: &FileSystemDirectoryHandle) -> Result<Vec<String>, JsValue> {
    let keys = dir.keys();
    let mut slugs = Vec::new();
    loop {
        let next = JsFuture::from(keys.next()?).await?;
        if js_sys::Reflect::get(&next, &"done".into())?.is_truthy() {
            break;
        }
        if let Some(slug) = js_sys::Reflect::get(&next, &"value".into())?.as_string() {
            slugs.push(slug);
        }
    }
    slugs.sort();
    Ok(slugs)
}

/// Every saved site: `[{slug, bytes, open}]`, `open` when a tab (this one
/// included) has it open.
#[wasm_bindgen(js_name = listSavedSites)]
pub async fn list_saved_sites() -> Result<Array, JsValue> {
    let dir = sites_dir().await?;
    let slugs = saved_slugs(&dir).await?;
    let out = Array::new();
    for slug in slugs {
        let site: FileSystemDirectoryHandle = JsFuture::from(dir.get_directory_handle(&slug)).await?.unchecked_into();
        let mut bytes = 0.0;
        for name in protocol::storage::LOG_FILES {
            if let Ok(handle) = JsFuture::from(site.get_file_handle(name)).await {
                let handle: web_sys::FileSystemFileHandle = handle.unchecked_into();
                let file: web_sys::File = JsFuture::from(handle.get_file()).await?.unchecked_into();
                bytes += file.size();
            }
        }
        let entry = Object::new();
        crate::util::set(&entry, "slug", slug.as_str());
        crate::util::set(&entry, "bytes", bytes);
        crate::util::set(&entry, "open", is_held_elsewhere(&slug).await?);
        out.push(&entry);
    }
    Ok(out)
}

/// Refuses when the site is open in a tab (its files are in use there).
async fn check_closed(slug: &str) -> Result<(), JsValue> {
    check_slug(slug).map_err(error)?;
    if is_held_elsewhere(slug).await? {
        return Err(error(format!("The site \"{slug}\" is open in a tab; open another site there first.")));
    }
    Ok(())
}

#[wasm_bindgen(js_name = deleteSavedSite)]
pub async fn delete_saved_site(slug: String) -> Result<(), JsValue> {
    check_closed(&slug).await?;
    let options = FileSystemRemoveOptions::new();
    options.set_recursive(true);
    JsFuture::from(sites_dir().await?.remove_entry_with_options(&slug, &options)).await?;
    if last_site().as_deref() == Some(slug.as_str()) {
        if let Some(Ok(Some(storage))) = web_sys::window().map(|w| w.local_storage()) {
            let _ = storage.remove_item(LAST_SITE_KEY);
        }
    }
    Ok(())
}

#[wasm_bindgen(js_name = renameSavedSite)]
pub async fn rename_saved_site(from: String, to: String) -> Result<(), JsValue> {
    check_closed(&from).await?;
    check_slug(&to).map_err(error)?;
    let dir = sites_dir().await?;
    if JsFuture::from(dir.get_directory_handle(&to)).await.is_ok() {
        return Err(error(format!("A site named \"{to}\" exists already.")));
    }
    // A new folder, the files moved into it, the old folder removed.
    let old: FileSystemDirectoryHandle = JsFuture::from(dir.get_directory_handle(&from)).await?.unchecked_into();
    let create = FileSystemGetDirectoryOptions::new();
    create.set_create(true);
    let new: FileSystemDirectoryHandle = JsFuture::from(dir.get_directory_handle_with_options(&to, &create)).await?.unchecked_into();
    for name in protocol::storage::LOG_FILES {
        if let Ok(file) = JsFuture::from(old.get_file_handle(name)).await {
            let file: MovableFile = file.unchecked_into();
            JsFuture::from(file.move_to(&new, name)?).await?;
        }
    }
    let recursive = FileSystemRemoveOptions::new();
    recursive.set_recursive(true);
    JsFuture::from(dir.remove_entry_with_options(&from, &recursive)).await?;
    if last_site().as_deref() == Some(from.as_str()) {
        remember(&to);
    }
    Ok(())
}
