/*
 * The view in front of the admin page ({name, key, refresh(), wants(message)},
 * put there by app.js's routing) and re-reading it: refresh() now, one more
 * time when asked again while it runs, refreshSoon() once for a burst of
 * WebSocket messages. A failed read shows in the view's status line.
 */

import {LoginRequired} from './api.js';

/* The view in front: {name, key, refresh(), wants(message)}. */
export const current = {view: null, loading: false, again: false, timer: null};

/* Re-read the view in front; a request while one runs makes one more after it. */
export async function refresh() {
  const view = current.view;
  if (!view) return;
  if (current.loading) {
    current.again = true;
    return;
  }
  current.loading = true;
  try {
    await view.refresh();
    view.root.setAttribute('data-loaded', String(++view.loads));
    clearError(view);
  } catch (e) {
    if (!(e instanceof LoginRequired)) showError(view, e);
  } finally {
    current.loading = false;
  }
  /* Asked again meanwhile, for this view or for the one that took its place. */
  if (current.again) {
    current.again = false;
    refresh();
  }
}

/* Something changed: re-read soon, once for a burst of messages. */
export function refreshSoon() {
  if (current.timer) return;
  current.timer = setTimeout(() => {
    current.timer = null;
    refresh();
  }, 100);
}

function showError(view, e) {
  view.status.textContent = 'Could not load this page: ' + e.message + '.';
  view.status.hidden = false;
}

function clearError(view) {
  view.status.hidden = true;
  view.status.textContent = '';
}
