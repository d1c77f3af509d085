// Message formatting: the composer's Markdown becomes `formatted_body` HTML, and HTML received
// from others is cut down to the tags the spec lists for `org.matrix.custom.html`
// (https://spec.matrix.org/v1.16/client-server-api/#mroommessage-msgtypes) before it is shown.

import DOMPurify from 'dompurify';
import { marked } from 'marked';

/** Tags the spec says clients should allow in `formatted_body` (less `mx-reply`, which is the
 *  reply fallback and is dropped, and `img`, whose `mxc://` source would need the media API). */
const ALLOWED_TAGS = [
  'del', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote', 'p', 'a', 'ul', 'ol', 'sup', 'sub',
  'li', 'b', 'i', 'u', 'strong', 'em', 's', 'code', 'hr', 'br', 'div', 'table', 'thead', 'tbody',
  'tr', 'th', 'td', 'caption', 'pre', 'span', 'details', 'summary',
];
const ALLOWED_ATTR = ['href', 'start', 'class', 'data-mx-color', 'data-mx-bg-color', 'data-mx-spoiler'];

let hooked = false;

/** `html` as safe markup: only the allowed tags and attributes, links open in a new tab, the
 *  reply fallback removed. */
export function sanitizeHtml(html: string): string {
  if (!hooked) {
    hooked = true;
    DOMPurify.addHook('afterSanitizeAttributes', (node) => {
      if (node.tagName === 'A') {
        const href = node.getAttribute('href') ?? '';
        if (!/^(https?:|mailto:|matrix:)/i.test(href)) node.removeAttribute('href');
        node.setAttribute('target', '_blank');
        node.setAttribute('rel', 'noreferrer noopener');
      }
    });
  }
  const withoutFallback = html.replace(/<mx-reply>[\s\S]*?<\/mx-reply>/gi, '');
  return DOMPurify.sanitize(withoutFallback, {
    ALLOWED_TAGS,
    ALLOWED_ATTR: [...ALLOWED_ATTR, 'target', 'rel'],
    ALLOW_DATA_ATTR: false,
  });
}

/** The composer's text as Matrix content: `body` always, `format`/`formatted_body` only when
 *  the Markdown made a difference. */
export function markdownContent(text: string): { body: string; format?: string; formatted_body?: string } {
  const html = (marked.parse(text, { async: false, gfm: true, breaks: true })).trim();
  const plain = `<p>${escapeHtml(text).replace(/\n/g, '<br>')}</p>`;
  if (html === plain || html === `<p>${escapeHtml(text)}</p>`) return { body: text };
  return { body: text, format: 'org.matrix.custom.html', formatted_body: sanitizeHtml(html) };
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c] ?? c);
}

/** A plain body without the reply fallback (`> <@a:b> quoted` lines and the blank line after). */
export function stripReplyFallback(body: string): string {
  const lines = body.split('\n');
  let i = 0;
  while (i < lines.length && lines[i]?.startsWith('> ')) i++;
  if (i > 0 && lines[i] === '') i++;
  return i > 0 ? lines.slice(i).join('\n') : body;
}
