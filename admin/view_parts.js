/*
 * What the admin page's views share: makeView() (a section with its heading,
 * status line, notice and body), say() for the notice, and the parts they
 * build from: facts lists, tables that become blocks on a phone, links to a
 * conversation or a task, the search form, and a job's request and answer.
 */

import {el, safeHref} from './dom.js';
import {badge} from './words.js';

/*
 * A view's section: its heading, a status line for what failed, a notice for what an
 * action did, and its body; build(view) fills the body and sets wants and refresh.
 */
export function makeView(name, title, build) {
  const status = el('p', {class: 'error', role: 'alert', hidden: true});
  const notice = el('p', {class: 'notice', role: 'status', hidden: true});
  const body = el('div', {class: 'view-body'});
  const heading = el('h1', {tabindex: '-1'}, title);
  const root = el('section', {class: 'view view-' + name, 'data-view': name}, heading, status, notice, body);
  const view = {name, title, root, heading, status, notice, body, loads: 0, wants: () => false};
  build(view);
  return view;
}

export function say(view, text) {
  view.notice.textContent = text;
  view.notice.hidden = !text;
}

/* A definition list of [label, value] pairs (a value may be a node). */
export function facts(pairs, cls) {
  const dl = el('dl', {class: 'facts' + (cls ? ' ' + cls : '')});
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    dl.appendChild(el('div', {class: 'fact'}, el('dt', {}, k), el('dd', {}, v === null ? '—' : v)));
  }
  return dl;
}

export function convLink(id, text) {
  return el('a', {href: '#/conversations/' + Number(id)}, text || 'conversation ' + Number(id));
}

export function taskRef(task) {
  if (!task) return el('span', {class: 'muted'}, 'no task');
  const label = task.id ? '#' + task.id : null;
  const link = !label ? null : safeHref(task.url)
    ? el('a', {href: task.url, target: '_blank', rel: 'noopener noreferrer', class: 'task-link'}, label)
    : el('span', {}, label);
  return el('span', {class: 'task'}, link, link && task.state ? ' ' : null,
    task.state ? badge('task', task.state) : null);
}

/* A search form that updates the route's q (and the list) as one types. */
export function searchForm(label, placeholder, value, onSearch) {
  const input = el('input', {type: 'search', name: 'q', id: 'search-q', placeholder, value: value || '',
    autocomplete: 'off', spellcheck: 'false'});
  let timer = null;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => onSearch(input.value.trim()), 300);
  });
  return el('form', {class: 'search', role: 'search', on: {submit: (ev) => {
    ev.preventDefault();
    clearTimeout(timer);
    onSearch(input.value.trim());
  }}}, el('label', {for: 'search-q'}, label), input, el('button', {type: 'submit'}, 'Search'));
}

export function setRoute(hash) {
  /* The same view with new parameters: no hashchange (the view stays and keeps focus). */
  history.replaceState(null, '', hash);
}

/* A table that turns into labelled blocks on a phone (see app.css). */
export function table(cls, headers, rows) {
  return el('table', {class: 'list ' + cls},
    el('thead', {}, el('tr', {}, headers.map((h) => el('th', {scope: 'col'}, h)))),
    el('tbody', {}, rows));
}

export function cell(label, ...content) {
  /* One child, so that the phone's label-and-value grid sees one value. */
  return el('td', {'data-label': label}, el('div', {class: 'cell'}, content));
}

/* A job's request and answer as the bridge recorded them (text, shown as is). */
export function exchange(req, resp) {
  return [
    el('h4', {}, 'Request'), el('pre', {class: 'raw'}, req || '(none recorded)'),
    el('h4', {}, 'Answer'), el('pre', {class: 'raw'}, resp || '(none recorded)'),
  ];
}
