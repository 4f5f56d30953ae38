"""The live view: `picodaq record --view` draws the signal in a browser while it records.

- observer: EnvelopeObserver, a TapRegistry observer that reduces each block to min/max columns
  on the receiver's thread and never waits (a full ring refuses the block and counts it);
- server: ViewServer, HTTP on 127.0.0.1 with server-sent events; a publisher thread drains the
  observer, each page's own thread writes to its socket, a slow page loses columns, counted;
- static/: the page (index.html, view.js: plain canvas, no library, nothing from a CDN);
- attach: the `--view` flag and what record/stream call to open it.
"""
