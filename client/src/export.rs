//! Export: the visible drawing as a PNG (painted by the same code as the screen, at scale 1, on
//! white, framed by [`export_frame`]) or as an SVG ([`to_svg`]), downloaded through a Blob, an
//! object URL and an `<a download>` click.

use crate::canvas::{Canvas, paint_element};
use crate::dom;
use shared::document::Document;
use shared::svg::{export_frame, to_svg};
use shared::view::View;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// Largest side of an exported PNG, in pixels (browsers refuse much larger canvases); a larger
/// drawing is scaled down to fit.
pub const MAX_PNG_SIDE: f32 = 16_384.0;

/// The visible elements painted on a new canvas framed by their export frame: white background,
/// scale 1 (unless the drawing is larger than [`MAX_PNG_SIDE`]).
pub fn png_canvas(doc: &Document) -> Result<Canvas, JsValue> {
    let frame = export_frame(doc.visible());
    let (w, h) = (frame.width().max(1.0), frame.height().max(1.0));
    let scale = (MAX_PNG_SIDE / w.max(h)).min(1.0);
    let canvas = Canvas::detached(
        f64::from((w * scale).ceil()),
        f64::from((h * scale).ceil()),
        1.0,
    )?;
    let ctx = canvas.context();
    ctx.set_fill_style_str("#ffffff");
    ctx.fill_rect(
        0.0,
        0.0,
        f64::from(canvas.element().width()),
        f64::from(canvas.element().height()),
    );
    canvas.set_view(&View {
        x: frame.min_x,
        y: frame.min_y,
        zoom: scale,
    });
    for element in doc.visible() {
        paint_element(ctx, element, 0);
    }
    Ok(canvas)
}

/// A canvas's pixels as PNG bytes, in a Blob (the canvas is taken, so no borrow of the document
/// is held while the browser encodes).
pub async fn png_blob(canvas: Canvas) -> Result<web_sys::Blob, JsValue> {
    let element = canvas.element().clone();
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        if let Err(err) = element.to_blob(&resolve) {
            let _ = reject.call1(&JsValue::NULL, &err);
        }
    });
    let blob = JsFuture::from(promise).await?;
    blob.dyn_into::<web_sys::Blob>()
        .map_err(|_| JsValue::from_str("the canvas gave no PNG"))
}

/// The drawing as an SVG Blob.
pub fn svg_blob(doc: &Document) -> Result<web_sys::Blob, JsValue> {
    let visible: Vec<_> = doc.visible().collect();
    let parts = js_sys::Array::of1(&JsValue::from_str(&to_svg(visible)));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("image/svg+xml");
    web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
}

/// Offers `blob` as a download named `name`.
pub fn download(blob: &web_sys::Blob, name: &str) -> Result<(), JsValue> {
    let url = web_sys::Url::create_object_url_with_blob(blob)?;
    let link = dom::document()?
        .create_element("a")?
        .dyn_into::<web_sys::HtmlAnchorElement>()?;
    link.set_href(&url);
    link.set_download(name);
    link.click();
    // The click has started the download; the URL is no longer needed. (Revoked on the next
    // turn, as some browsers read it after `click` returns.)
    wasm_bindgen_futures::spawn_local(async move {
        dom::sleep(0).await;
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    Ok(())
}

/// What an export button downloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// [`png_canvas`], encoded by the browser.
    Png,
    /// [`svg_blob`].
    Svg,
}

/// Downloads the drawing as `drawmesh-<name>.png` or `.svg`; a failure is a console warning.
pub fn download_drawing(doc: &Document, format: Format, name: &str) {
    match format {
        Format::Png => {
            let canvas = match png_canvas(doc) {
                Ok(canvas) => canvas,
                Err(err) => return web_sys::console::warn_2(&"PNG export failed:".into(), &err),
            };
            let name = format!("drawmesh-{name}.png");
            wasm_bindgen_futures::spawn_local(async move {
                let done = match png_blob(canvas).await {
                    Ok(blob) => download(&blob, &name),
                    Err(err) => Err(err),
                };
                if let Err(err) = done {
                    web_sys::console::warn_2(&"PNG export failed:".into(), &err);
                }
            });
        }
        Format::Svg => {
            let name = format!("drawmesh-{name}.svg");
            if let Err(err) = svg_blob(doc).and_then(|blob| download(&blob, &name)) {
                web_sys::console::warn_2(&"SVG export failed:".into(), &err);
            }
        }
    }
}
