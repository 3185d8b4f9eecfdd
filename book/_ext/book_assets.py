"""This book's Sphinx extension: two fixes to the pages' scripts, so that no page logs a console error or asks for a
file that is not there.

- sphinx-thebe's and sphinx-togglebutton's inline scripts (``const THEBE_JS_URL = ...``) reach each page twice under
  Jupyter Book 1, and the second ``const`` fails ("Identifier 'THEBE_JS_URL' has already been declared").
  Identical inline scripts are kept once.
- The vendored widget manager (``_static/vendor/widgets/embed-amd.js``) finds its fonts relative to the URL of its
  RequireJS module (``@jupyter-widgets/html-manager/dist/...``), which RequireJS resolves against the page's folder,
  where the fonts are not. On pages with widgets, an inline script between ``require.js`` and the manager points
  those module names at the folder the manager is loaded from.
"""

REQUIRE_PATHS = """(function () {
  var s = document.querySelector('script[src*="vendor/require.js"]');
  if (!s || !window.require || !window.require.config) { return; }
  var dir = s.src.slice(0, s.src.lastIndexOf("/")) + "/widgets";
  window.require.config({paths: {"@jupyter-widgets": dir, "@jupyter-widgets/html-manager/dist": dir}});
})();"""


def _body(js) -> str | None:
    attrs = getattr(js, "attributes", None) or {}
    return attrs.get("body")


def _inline(js) -> bool:
    return _body(js) is not None and not getattr(js, "filename", None)  # an inline script's filename is "" or None


def dedupe_inline_scripts(app, pagename, templatename, context, doctree):
    files = context.get("script_files")
    if not files:
        return
    seen, kept = set(), []
    for js in files:
        if _inline(js):
            if _body(js) in seen:
                continue
            seen.add(_body(js))
        kept.append(js)
    files[:] = kept


def widget_fonts(app, pagename, templatename, context, doctree):
    """After the page's scripts are all in (myst-nb adds RequireJS and the manager per page with widgets)."""
    from sphinx.builders.html._assets import _JavaScript

    files = context.get("script_files")
    if not files or any(_body(js) == REQUIRE_PATHS for js in files):
        return
    for i, js in enumerate(files):
        if str(getattr(js, "filename", "") or "").endswith("vendor/require.js"):
            files.insert(i + 1, _JavaScript("", priority=js.priority, body=REQUIRE_PATHS))
            return


def setup(app):
    # first and last: the event stops at the first handler that returns a template name
    app.connect("html-page-context", dedupe_inline_scripts, priority=1)
    app.connect("html-page-context", widget_fonts, priority=999)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
