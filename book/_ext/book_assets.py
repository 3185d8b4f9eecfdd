"""This book's Sphinx extension: two fixes to the pages' scripts, so that no page logs a console error.

- sphinx-thebe's inline configuration (``const THEBE_JS_URL = ...``) reaches each page twice under Jupyter Book 1,
  and the second copy fails ("Identifier 'THEBE_JS_URL' has already been declared"). Identical inline scripts are
  kept once.
- The vendored widget manager (``_static/vendor/widgets/embed-amd.js``) finds its fonts relative to its RequireJS
  module names (``@jupyter-widgets/...``), which RequireJS resolves against the page's folder, where they are not.
  A RequireJS ``paths`` entry, set after the manager's script and before it renders any widget, points those names
  at the folder the manager was loaded from.
"""

REQUIRE_PATHS = """(function () {
  var s = document.querySelector('script[src*="vendor/widgets/embed-amd.js"]');
  if (!s || !window.require || !window.require.config) { return; }
  var dir = s.src.slice(0, s.src.lastIndexOf("/"));
  window.require.config({paths: {"@jupyter-widgets": dir, "@jupyter-widgets/html-manager/dist": dir}});
})();"""


def _body(js) -> str | None:
    attrs = getattr(js, "attributes", None) or {}
    return attrs.get("body")


def dedupe_inline_scripts(app, pagename, templatename, context, doctree):
    files = context.get("script_files")
    if not files:
        return
    seen, kept = set(), []
    for js in files:
        body = _body(js)
        if body is not None and getattr(js, "filename", None) is None:
            if body in seen:
                continue
            seen.add(body)
        kept.append(js)
    files[:] = kept


def setup(app):
    app.connect("html-page-context", dedupe_inline_scripts, priority=900)
    app.add_js_file(None, body=REQUIRE_PATHS, priority=900)  # after the widget manager's scripts (priority 500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
