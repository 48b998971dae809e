/*
 * The admin page's list of conversations (#/conversations?q=...): a search by
 * name, e-mail, client id or task number, fifty a page, newest first, each row
 * with its person, devices, e-mails, channel, task and state. Re-read when a
 * conversation changes.
 */

import {el, joined, replace} from './dom.js';
import {api} from './api.js';
import {refresh} from './front.js';
import {cell, convLink, makeView, searchForm, setRoute, table, taskRef} from './view_parts.js';
import {badge, when} from './words.js';

export function conversationsView(params) {
  return makeView('conversations', 'Conversations', (v) => {
    const state = {q: params.get('q') || '', before: params.get('before') || ''};
    const list = el('div', {class: 'results'});
    const pager = el('nav', {class: 'pager', 'aria-label': 'Pages of conversations'});
    v.body.append(
      searchForm('Search', 'name, e-mail, client id or task number', state.q, (q) => {
        state.q = q;
        state.before = '';
        setRoute('#/conversations' + (q ? '?' + new URLSearchParams({q}).toString() : ''));
        refresh();
      }),
      list, pager);
    v.wants = (m) => m.type === 'conversation';
    v.refresh = async () => {
      const p = new URLSearchParams({limit: '50'});
      if (state.q) p.set('q', state.q);
      if (state.before) p.set('before', state.before);
      const data = await api.get('conversations?' + p.toString());
      const convs = data.conversations || [];
      if (convs.length === 0) {
        replace(list, el('p', {class: 'empty'}, state.q ? 'No conversation matches “' + state.q + '”.'
          : 'No conversation yet.'));
      } else {
        replace(list, table('conversations',
          ['Person', 'Devices', 'E-mails', 'Channel', 'Task', 'State', 'Last activity'],
          convs.map(conversationRow)));
      }
      const page = (before) => {
        const p = new URLSearchParams();
        if (state.q) p.set('q', state.q);
        if (before) p.set('before', String(before));
        const s = p.toString();
        return '#/conversations' + (s ? '?' + s : '');
      };
      replace(pager,
        state.before ? el('a', {href: page(null), class: 'button'}, '← Newest') : null,
        data.next_before ? el('a', {href: page(data.next_before), class: 'button'}, 'Older →') : null);
    };
  });
}

function personName(c) {
  return c.name ? c.name : el('span', {class: 'muted'}, 'no name');
}

function conversationRow(c) {
  const ids = c.client_ids || [];
  return el('tr', {'data-conversation': c.id},
    cell('Person', el('a', {href: '#/conversations/' + Number(c.id), class: 'person-name'}, personName(c)),
      el('span', {class: 'muted small'}, ' #' + Number(c.id))),
    cell('Devices', String(c.devices ?? ids.length),
      ids.length ? el('div', {class: 'small muted ids'}, joined(ids.map((i) => el('code', {}, i)))) : null),
    cell('E-mails', (c.emails || []).length ? joined(c.emails.map((e) => el('span', {class: 'email'}, e)))
      : el('span', {class: 'muted'}, 'none')),
    cell('Channel', c.channel || '—'),
    cell('Task', taskRef(c.task)),
    cell('State', badge('conversation', c.state),
      c.merged_into ? [' into ', convLink(c.merged_into, '#' + Number(c.merged_into))] : null),
    cell('Last activity', when(c.last_activity, {short: true})));
}
