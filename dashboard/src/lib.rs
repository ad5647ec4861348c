//! The operations dashboard. For now it only mounts a placeholder page at `/dashboard`; the web UI with
//! queue overviews and job actions is built on top of the queue crate's inspection queries later.

use axum::{Router, response::Html, routing::get};

/// Returns the dashboard's routes, to be merged into the API's router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/dashboard", get(placeholder))
}

async fn placeholder() -> Html<&'static str> {
    // TODO: replace with the server-rendered dashboard (queues, jobs, actions, login).
    Html("<!doctype html><title>DueSpark Jobs</title><p>The dashboard is not built yet.</p>")
}
