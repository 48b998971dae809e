/*
 * The admin page's dead letters (#/dead-letters): the jobs that failed for
 * good, each with its error, request and answer, and Retry and Discard
 * buttons. Reading them also sets the menu's count. Re-read when the dead
 * letters change.
 */

import {el, replace} from './dom.js';
import {LoginRequired, api} from './api.js';
import {refresh} from './front.js';
import {refreshDeadCount} from './menu.js';
import {convLink, exchange, facts, makeView, say} from './view_parts.js';
import {attemptsText, toMs, when} from './words.js';

export function deadLettersView() {
  return makeView('dead-letters', 'Dead letters', (v) => {
    const open = new Set();
    v.body.append(el('p', {class: 'muted'}, 'Jobs that failed for good. Retry puts one back in the queue ' +
      '(it looks in the tracker before it writes again); Discard marks it discarded: it is kept, ' +
      'never retried, and no longer counted.'));
    const list = el('div', {class: 'results'});
    v.body.append(list);
    v.wants = (m) => m.type === 'dead_letters';
    v.refresh = async () => {
      const dead = await api.get('dead-letters');
      refreshDeadCount({dead_letters: Array.isArray(dead) ? dead.length : 0});
      if (!Array.isArray(dead) || dead.length === 0) {
        replace(list, el('p', {class: 'empty'}, el('span', {'aria-hidden': 'true'}, '✓ '), 'No dead letters.'));
        return;
      }
      replace(list, el('div', {class: 'dead-letters'}, dead.map((d) => deadCard(d, v, open))));
    };
  });
}

function deadCard(d, view, open) {
  const key = String(d.id);
  const details = el('details', {class: 'exchange', open: open.has(key) || undefined},
    el('summary', {}, 'Request and answer'), exchange(d.request, d.response));
  details.addEventListener('toggle', () => (details.open ? open.add(key) : open.delete(key)));
  return el('article', {class: 'card dead', 'data-job': d.id, 'data-conversation': d.conversation},
    el('h3', {}, 'Job ' + d.id, ' ', el('span', {class: 'muted small'}, '· ' + (d.kind || '?') + ' on ' +
      (d.upstream || '?'))),
    facts([
      ['Conversation', d.conversation ? convLink(d.conversation) : '—'],
      ['Failed', d.at ? when(toMs(d.at)) : '—'],
      ['Attempts', attemptsText('dead', d.attempts)],
      ['Error', d.error ? el('span', {class: 'text'}, d.error) : '—'],
    ]),
    details,
    el('p', {class: 'actions'},
      el('button', {type: 'button', class: 'retry', on: {click: (ev) => deadAction(ev.target, d.id, 'retry', view)}},
        'Retry'),
      ' ',
      el('button', {type: 'button', class: 'danger discard',
        on: {click: (ev) => deadAction(ev.target, d.id, 'discard', view)}}, 'Discard')));
}

async function deadAction(button, id, action, view) {
  if (action === 'discard' && !window.confirm('Discard job ' + id + '? It will never be sent; it stays in the ' +
    'store, marked discarded, with its request and answer.')) return;
  button.disabled = true;
  try {
    await api.post('dead-letters/' + id + '/' + action);
    say(view, action === 'retry' ? 'Job ' + id + ' is back in the queue.' : 'Job ' + id + ' discarded.');
  } catch (e) {
    if (e instanceof LoginRequired) return;
    say(view, (action === 'retry' ? 'Retry' : 'Discard') + ' of job ' + id + ' failed: ' + e.message + '.');
  }
  refresh();
}
