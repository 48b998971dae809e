/*
 * The admin page's identities (#/identities?q=...): each person with their
 * e-mails, conversations and devices, and the merges that joined them, each
 * with an Unmerge button that undoes a wrong merge. Re-read when a
 * conversation changes.
 */

import {el, joined, replace} from './dom.js';
import {LoginRequired, api} from './api.js';
import {refresh} from './front.js';
import {convLink, facts, makeView, say, searchForm, setRoute} from './view_parts.js';
import {isTime, when} from './words.js';

export function identitiesView(params) {
  return makeView('identities', 'Identities', (v) => {
    const state = {q: params.get('q') || ''};
    const list = el('div', {class: 'results'});
    v.body.append(
      el('p', {class: 'muted'}, 'Each person with their devices and e-mails, and the merges that joined ' +
        'their conversations. Unmerge undoes a wrong merge: the devices and e-mails go back, and the next ' +
        'message from that device opens a task of its own.'),
      searchForm('Search', 'e-mail, contact, task or conversation number', state.q, (q) => {
        state.q = q;
        setRoute('#/identities' + (q ? '?' + new URLSearchParams({q}).toString() : ''));
        refresh();
      }),
      list);
    v.wants = (m) => m.type === 'conversation';
    v.refresh = async () => {
      const people = await api.get('identities' + (state.q ? '?' + new URLSearchParams({q: state.q}) : ''));
      if (!Array.isArray(people) || people.length === 0) {
        replace(list, el('p', {class: 'empty'}, state.q ? 'Nobody matches “' + state.q + '”.' : 'Nobody yet.'));
        return;
      }
      replace(list, el('div', {class: 'people'}, people.map((p) => personCard(p, v))));
    };
  });
}

function personCard(p, view) {
  const emails = p.emails || [];
  const convs = p.conversations || [];
  const merges = p.merges || [];
  return el('article', {class: 'card person', 'data-person': p.person},
    el('h3', {}, 'Person ' + p.person, p.contact ? el('span', {class: 'muted small'}, ' · contact ' + p.contact)
      : null),
    facts([
      ['E-mails', emails.length ? joined(emails.map((e) => el('span', {class: 'email'}, e.email,
        el('span', {class: 'muted small'}, e.verified ? ' (set by the site)' : ' (typed in the chat)'))))
        : el('span', {class: 'muted'}, 'none')],
    ]),
    el('h4', {}, 'Conversations'),
    el('ul', {class: 'plain'}, convs.map((c) => el('li', {},
      convLink(c.conversation), ' · ' + (c.channel || ''),
      c.task ? ' · task #' + c.task : '',
      c.merged_into ? [' · merged into ', convLink(c.merged_into)] : null,
      el('div', {class: 'small'}, 'Devices: ', (c.devices || []).length
        ? joined(c.devices.map((d) => el('code', {}, d))) : el('span', {class: 'muted'}, 'none'))))),
    merges.length ? [el('h4', {}, 'Merges'), el('ul', {class: 'plain merges'}, merges.map((m) =>
      mergeItem(m, view)))] : null);
}

function mergeItem(m, view) {
  const id = m.merge ?? m.id;
  const undone = m.undone === true || isTime(m.undone_at);
  const reason = m.reason && m.reason !== 'email' ? m.reason
    : 'the e-mail ' + (m.email || '?') + (m.verified ? ' (set by the site)' : ' (typed in the chat)');
  const what = m.merged_conversation
    ? ['conversation ', convLink(m.merged_conversation, '#' + m.merged_conversation), ' joined into ',
      convLink(m.survivor_conversation, '#' + m.survivor_conversation)]
    : ['a new device joined conversation ', convLink(m.survivor_conversation, '#' + m.survivor_conversation)];
  const li = el('li', {class: 'merge', 'data-merge': id},
    el('p', {}, el('strong', {}, 'Merge ' + id), ': ', what, ', by ', reason, ' · ',
      when(m.at, {short: true})),
    undone
      ? el('p', {}, el('span', {class: 'badge muted', 'data-state': 'undone'},
        el('span', {class: 'icon', 'aria-hidden': 'true'}, '↶'), ' undone'),
      isTime(m.undone_at) ? [' ', when(m.undone_at, {short: true})] : null)
      : el('p', {}, el('span', {class: 'badge good', 'data-state': 'in-force'},
        el('span', {class: 'icon', 'aria-hidden': 'true'}, '⇄'), ' in force'), ' ',
      el('button', {type: 'button', class: 'danger unmerge', on: {click: (ev) => unmerge(ev.target, id, view)}},
        'Unmerge')));
  return li;
}

async function unmerge(button, id, view) {
  if (!window.confirm('Undo merge ' + id + '? The devices and e-mails it joined go back to their own ' +
    'conversation, and its next message opens a task of its own.')) return;
  button.disabled = true;
  try {
    const r = await api.post('merges/' + id + '/unmerge');
    say(view, 'Merge ' + id + ' undone' + (r && r.conversation ? ': conversation ' + r.conversation +
      ' is on its own again.' : '.'));
  } catch (e) {
    if (e instanceof LoginRequired) return;
    say(view, e.status === 409 ? 'Merge ' + id + ' was already undone.' : 'Unmerge failed: ' + e.message + '.');
  }
  refresh();
}
