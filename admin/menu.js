/*
 * The admin page's menu: which link is the view in front (aria-current), and
 * the count of dead letters beside its link, read from the overview (or given
 * by a view that has just read it).
 */

import {$} from './dom.js';
import {api} from './api.js';

export function markCurrent(name) {
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('data-view') === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

export async function refreshDeadCount(overview) {
  try {
    const o = overview || await api.get('overview');
    const n = o.dead_letters || 0;
    $('dead-count').textContent = n > 0 ? '(' + n + ')' : '';
  } catch (e) {
    /* The view in front shows errors; the count stays as it was. */
  }
}
