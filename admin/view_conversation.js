/*
 * The admin page's view of one conversation (#/conversations/12): its facts,
 * then its timeline, oldest first: webhooks, messages and where each went,
 * tasks, replies, merges, visits and the requests made for it (with their
 * request and answer, kept open across re-reads). Re-read when this
 * conversation changes.
 */

import {el, joined, replace} from './dom.js';
import {api} from './api.js';
import {convLink, exchange, facts, makeView, taskRef} from './view_parts.js';
import {attemptsText, badge, clock, isTime, localTime, plural, when} from './words.js';

export function conversationView(id) {
  return makeView('conversation', 'Conversation ' + id, (v) => {
    const open = new Set();   /* the request/answer boxes the admin opened, kept across re-reads */
    v.wants = (m) => m.type === 'conversation' && Number(m.id) === id;
    v.refresh = async () => {
      let data;
      try {
        data = await api.get('conversations/' + id);
      } catch (e) {
        if (e.status === 404) {
          replace(v.body, el('p', {class: 'empty'}, 'There is no conversation ' + id + '. ',
            el('a', {href: '#/conversations'}, 'All conversations')));
          return;
        }
        throw e;
      }
      const c = data.conversation || {};
      replace(v.heading, c.name ? c.name : 'Conversation ' + id);
      document.title = (c.name ? c.name : 'Conversation ' + id) + ' · chatra-bridge';
      const timeline = data.timeline || [];
      replace(v.body,
        el('p', {class: 'back'}, el('a', {href: '#/conversations'}, '← All conversations')),
        conversationFacts(c),
        el('h2', {}, 'Timeline ', el('span', {class: 'muted small'}, '(oldest first, ' +
          plural(timeline.length, 'event', 'events') + ')')),
        data.truncated ? el('p', {class: 'muted'}, 'Only the latest ' + timeline.length +
          ' events are shown; older ones are left out.') : null,
        timeline.length ? el('ol', {class: 'timeline'}, timeline.map((ev) => timelineItem(ev, open)))
          : el('p', {class: 'empty'}, 'Nothing happened yet.'));
    };
  });
}

function conversationFacts(c) {
  return facts([
    ['Conversation', '#' + Number(c.id)],
    ['State', [badge('conversation', c.state),
      c.merged_into ? [' into ', convLink(c.merged_into)] : null]],
    ['Channel', c.channel || '—'],
    ['Task', [taskRef(c.task), c.tasks > 1 ? el('span', {class: 'muted small'}, ' (task ' + c.tasks +
      ' of this conversation)') : null]],
    ['E-mails', (c.emails || []).length ? joined(c.emails.map((e) => el('span', {class: 'email'}, e)))
      : el('span', {class: 'muted'}, 'none')],
    ['Phone', c.phone ? c.phone : undefined],
    ['Devices', [String(c.devices ?? (c.client_ids || []).length),
      (c.client_ids || []).length ? [': ', joined(c.client_ids.map((i) => el('code', {}, i)))] : null]],
    ['Person', c.person_id ? el('a', {href: '#/identities' + ((c.emails || []).length
      ? '?' + new URLSearchParams({q: c.emails[0]}).toString() : '')}, 'person ' + Number(c.person_id)) : undefined],
    ['Started', isTime(c.created_at) ? when(c.created_at, {clock: true}) : undefined],
    ['Last activity', when(c.last_activity, {clock: true})],
  ], 'conversation-facts');
}

const KIND_WORDS = {
  webhook: ['⇣', 'Webhook'],
  message: ['✉', 'Message'],
  task: ['▣', 'Task'],
  reply: ['↩', 'Reply'],
  merge: ['⇄', 'Merge'],
  visit: ['⌂', 'Visit'],
  job: ['⇡', 'Request'],
};

function timelineItem(ev, open) {
  const kind = KIND_WORDS[ev.type] || ['•', ev.type];
  const render = TIMELINE[ev.type] || ((e) => el('p', {}, 'Event ' + e.type));
  const li = el('li', {class: 'event event-' + ev.type, 'data-type': ev.type},
    el('div', {class: 'event-head'},
      el('span', {class: 'event-kind'}, el('span', {class: 'icon', 'aria-hidden': 'true'}, kind[0]), ' ', kind[1]),
      ' ', isTime(ev.at) ? el('time', {class: 'event-time', datetime: new Date(ev.at).toISOString(),
        title: localTime(ev.at)}, clock(ev.at)) : null),
    el('div', {class: 'event-body'}, render(ev, open)));
  if (ev.type === 'message' && ev.message_id !== undefined) li.setAttribute('data-message', ev.message_id);
  if (ev.type === 'job' && ev.job_id !== undefined) li.setAttribute('data-job', ev.job_id);
  return li;
}

const AUTHORS = {visitor: 'the visitor', agent: 'an agent'};

function messagePath(ev) {
  const task = ev.task ? ' of task #' + ev.task : '';
  switch (ev.state) {
    case 'in_description': return ['✓', 'in the task description' + task, 'good'];
    case 'in_comment': return ['✓', 'in comment ' + (ev.comment_id || '?') + task, 'good'];
    case 'pending': return ['…', 'waiting to be sent to the tracker', 'warn'];
    case 'skipped': return ['⊘', 'not sent to the tracker', 'muted'];
    case 'unknown': return ['?', 'not known (the message is no longer stored)', 'muted'];
    default: return ['?', String(ev.state), 'muted'];
  }
}

function emailWhy(ev) {
  if (!ev.email) return ev.reason ? ' (' + ev.reason + ')' : null;
  return [' by the e-mail ', el('span', {class: 'email'}, ev.email),
    ev.verified === undefined ? null : ev.verified ? ' (set by the site)' : ' (typed in the chat)'];
}

const TIMELINE = {
  webhook: (ev) => ev.event === 'tracker'
    ? el('p', {}, 'The tracker said task #' + (ev.task || '?') + ' changed.')
    : el('p', {}, 'Chatra sent ', el('code', {}, ev.event || 'a webhook'),
      typeof ev.messages === 'number' ? ' with ' + plural(ev.messages, 'message', 'messages') : null,
      ev.device ? [' from device ', el('code', {}, ev.device)] : null, '.'),
  message: (ev) => {
    const p = messagePath(ev);
    const co = ev.coalesced_with || [];
    return [
      el('blockquote', {class: 'text'}, ev.text || ''),
      el('p', {class: 'path'}, 'From ', AUTHORS[ev.author] || ev.author || 'someone',
        el('span', {class: 'muted'}, ' (message ' + ev.message_id + ')'), ': ',
        el('span', {class: 'badge ' + p[2], 'data-state': ev.state},
          el('span', {class: 'icon', 'aria-hidden': 'true'}, p[0]), ' ', p[1]),
        co.length ? el('span', {class: 'coalesced'}, ', coalesced with ' +
          (co.length === 1 ? 'message ' : 'messages ') + co.join(', ')) : null),
    ];
  },
  task: (ev) => {
    const verbs = {created: 'created', joined: 'joined (an active task of this contact)',
      closed: 'completed', reopened: 'was completed in the tracker: the chat goes on in a new task'};
    return el('p', {}, 'Task #' + (ev.task || '?') + ' ' + (verbs[ev.action] || ev.action || ''),
      ev.gen ? el('span', {class: 'muted small'}, ' · generation ' + ev.gen) : null, '.');
  },
  reply: (ev) => [
    el('blockquote', {class: 'text'}, ev.text || ''),
    el('p', {class: 'who'}, 'From ', ev.agent || 'an employee',
      ev.comment_id ? el('span', {class: 'muted'}, ' (tracker comment ' + ev.comment_id + ')') : null,
      ' to device ', el('code', {}, ev.device || '?'),
      ev.job_state ? [': ', badge('reply', ev.job_state)] : null,
      ev.job_id ? el('span', {class: 'muted small'}, ' · job ' + ev.job_id) : null),
  ],
  merge: (ev) => el('p', {},
    ev.other_conversation ? ['Merged with ', convLink(ev.other_conversation)]
      : ['Device ', el('code', {}, ev.device || '?'), ' joined this person'],
    emailWhy(ev),
    el('span', {class: 'muted small'}, ' · merge ' + ev.merge_id), '. ',
    isTime(ev.undone_at) ? el('span', {class: 'badge muted', 'data-state': 'undone'},
      el('span', {class: 'icon', 'aria-hidden': 'true'}, '↶'), ' undone ', when(ev.undone_at, {short: true}))
      : null),
  visit: (ev) => el('p', {}, ev.note === 'device_joined' ? 'A new device joined: ' : 'A new visit from device ',
    el('code', {}, ev.device || '?'), '.'),
  job: (ev, open) => {
    /* A job has a row for each end (dead, retried, done): each keeps its own box open. */
    const key = ev.job_id + ':' + ev.at + ':' + ev.state;
    const parts = [
      el('p', {}, el('code', {}, ev.kind || 'job'), ' on ', ev.upstream || 'the tracker', ' ',
        badge('job', ev.state), attemptsText(ev.state, ev.attempts) ? ' ' + attemptsText(ev.state, ev.attempts) : null,
        el('span', {class: 'muted small'}, ' · job ' + ev.job_id),
        ev.state === 'dead' ? [' · ', el('a', {href: '#/dead-letters'}, 'dead letters')] : null),
      ev.error ? el('p', {class: 'job-error'}, 'Error: ', el('span', {class: 'text'}, ev.error)) : null,
    ];
    if (ev.request || ev.response) {
      const d = el('details', {class: 'exchange', open: open.has(key)},
        el('summary', {}, 'Request and answer'),
        exchange(ev.request, ev.response));
      d.addEventListener('toggle', () => (d.open ? open.add(key) : open.delete(key)));
      parts.push(d);
    }
    return parts;
  },
};
