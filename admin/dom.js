/*
 * Building the admin page's DOM. el() and append() put every string in as a
 * text node, so whatever a visitor or the tracker wrote is shown as text;
 * safeHref() lets a link point only at the page's own routes or at http(s).
 * No module of the page assigns innerHTML or sets a style attribute (the CSP
 * allows no inline script or style).
 */

export const $ = (id) => document.getElementById(id);

/* A link target from data: only the page's own routes and http(s) URLs. */
export function safeHref(url) {
  if (typeof url !== 'string' || url === '') return null;
  if (url.startsWith('#/')) return url;
  try {
    const u = new URL(url, location.href);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : null;
  } catch (e) {
    return null;
  }
}

/*
 * el('a', {href: '#/', class: 'x'}, 'text', child, [more]): strings become
 * text nodes; null, undefined and false are left out.
 */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'href') {
      const h = safeHref(v);
      if (h) node.setAttribute('href', h);
    } else if (k === 'on') {
      for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    } else if (v === true) {
      node.setAttribute(k, '');
    } else {
      node.setAttribute(k, String(v));
    }
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(node, c);
    else if (c instanceof Node) node.appendChild(c);
    else node.appendChild(document.createTextNode(String(c)));
  }
  return node;
}

export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/* "a, b and c" as nodes or text, for short lists. */
export function joined(items, sep) {
  const out = [];
  items.forEach((it, i) => {
    if (i > 0) out.push(sep || ', ');
    out.push(it);
  });
  return out;
}
