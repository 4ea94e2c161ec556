"""The templates screen: browse by category, preview, fill in variables, and use."""

from __future__ import annotations

import re
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Static, Tree

from ...core.errors import ConfigError, RouterError
from ...core.runtime import Runtime
from ...core.templates import Template, TemplateSet
from ..messages import TemplateChosen, TemplateEdit
from ..router_app import router_app
from ..widgets.key_footer import KeyFooter
from ..widgets.top_bar import TopBar

RELOAD_EVERY_S = 2.0
_PLACEHOLDER = re.compile(r"\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}")


def template_matches(template: Template, needle: str) -> bool:
    """Whether every word of `needle` is in the id, title, category, tags or description."""
    hay = " ".join(
        [template.id, template.title, template.category, *template.tags, template.description or ""]
    ).casefold()
    return all(word in hay for word in needle.casefold().split())


def highlight_placeholders(text: str) -> Content:
    """Template text with its `{{variables}}` emphasised."""
    parts: list[str | tuple[str, str]] = []
    last = 0
    for match in _PLACEHOLDER.finditer(text):
        parts.append(text[last : match.start()])
        parts.append((match.group(0), "bold $accent"))
        last = match.end()
    parts.append(text[last:])
    return Content.assemble(*parts)


def missing_values(values: dict[str, str]) -> list[str]:
    """Variable names whose value is empty or only whitespace."""
    return [name for name, value in values.items() if not value.strip()]


class TemplatesScreen(Screen[None]):
    """Pick a prompt template, fill in its variables and send it to the chat."""

    CSS_PATH = "templates.tcss"

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "use", "Use template", id="templates.use"),
        Binding("ctrl+f", "focus_filter", "Filter", id="templates.filter"),
        Binding("ctrl+r", "reload", "Reload files", id="templates.reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.selected_id: str | None = None
        self._shown: TemplateSet | None = None
        #: Enter was pressed on a template: focus its first empty variable once the form
        #: for it is built.
        self._focus_form = False

    @property
    def runtime(self) -> Runtime:
        return router_app(self).runtime

    def compose(self) -> ComposeResult:
        yield TopBar("templates")
        yield Static("", id="tpl-error", markup=False)
        with Horizontal(id="tpl-body"):
            with Vertical(id="tpl-left"):
                yield Input(placeholder="Filter… (ctrl+f)", id="tpl-filter", compact=True)
                tree: Tree[str] = Tree("Templates", id="tpl-tree")
                tree.show_root = False
                yield tree
            with Vertical(id="tpl-right"):
                yield Static("", id="tpl-heading", markup=False)
                # Scrolled with the mouse; no focus stop of their own (typed text would go
                # nowhere).
                with VerticalScroll(id="tpl-preview", can_focus=False):
                    yield Static("", id="tpl-preview-text")
                yield Static("Variables", id="tpl-vars-label")
                yield VerticalScroll(id="tpl-form", can_focus=False)
                yield Static("", id="tpl-form-error", markup=False)
                with Horizontal(id="tpl-actions"):
                    yield Button("Use in chat ^s", id="tpl-use", variant="primary", compact=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        self._fill_tree()
        self.set_interval(RELOAD_EVERY_S, self._check_files, name="templates-reload")
        router_app(self).runtime_changed.subscribe(self, lambda _rt: self._fill_tree())
        self.query_one("#tpl-tree", Tree).focus()

    def on_screen_resume(self) -> None:
        self._check_files()

    # ---- file reloading ----------------------------------------------------------------------

    def _check_files(self) -> None:
        """Pick up changed template files; a broken file leaves the last good set in place."""
        if not self.is_current and self._shown is not None:
            return
        try:
            fresh = self.runtime.reload_templates()
        except ConfigError:
            fresh = None
        self._show_error(self.runtime.template_watcher.error)
        if fresh is not None or self._shown is not self.runtime.templates:
            self._fill_tree()

    def _show_error(self, error: ConfigError | None) -> None:
        banner = self.query_one("#tpl-error", Static)
        banner.display = error is not None
        if error is not None:
            banner.update(f"⚠ Templates file not reloaded: {error}. Showing the last good set.")

    def action_reload(self) -> None:
        """Check the template files now (they are also checked every few seconds)."""
        self._check_files()
        error = self.runtime.template_watcher.error
        if error is None:
            self.notify(f"{len(self.runtime.templates)} templates loaded.")
        else:
            self.notify(f"{error}", title="Templates not reloaded", severity="error")

    # ---- tree and filter ---------------------------------------------------------------------

    def _fill_tree(self) -> None:
        templates = self.runtime.templates
        self._shown = templates
        needle = self.query_one("#tpl-filter", Input).value.strip()
        tree: Tree[str] = self.query_one("#tpl-tree", Tree)
        tree.clear()
        first: str | None = None
        keep_line: int | None = None
        for category, items in templates.by_category().items():
            shown = [t for t in items if not needle or template_matches(t, needle)]
            if not shown:
                continue
            node = tree.root.add(f"{category} ({len(shown)})", expand=True)
            for template in shown:
                leaf = node.add_leaf(template.title, data=template.id)
                first = first or template.id
                if template.id == self.selected_id:
                    keep_line = leaf.line
        if self.selected_id not in templates or (keep_line is None and first is not None):
            self.selected_id = None
        if keep_line is not None:
            tree.move_cursor_to_line(keep_line)
        elif first is not None:
            self._select(first)
            tree.move_cursor_to_line(1)
        else:
            self._select(None)

    @on(Input.Changed, "#tpl-filter")
    def _filter_changed(self) -> None:
        self._fill_tree()

    @on(Input.Submitted, "#tpl-filter")
    def _filter_submitted(self) -> None:
        """Enter in the filter: on to the first empty variable of the template shown."""
        if self.selected_id is None:
            self.query_one("#tpl-tree", Tree).focus()
            return
        self._focus_first_empty()

    @on(Tree.NodeHighlighted, "#tpl-tree")
    def _highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        if event.node.data is not None and event.node.data != self.selected_id:
            self._select(event.node.data)

    @on(Tree.NodeSelected, "#tpl-tree")
    def _node_selected(self, event: Tree.NodeSelected[str]) -> None:
        if event.node.data is not None:
            if event.node.data != self.selected_id:
                self._select(event.node.data)
            self._focus_first_empty()

    def _focus_first_empty(self) -> None:
        """Focus the first variable without a value (else the first one, else Use); when the
        form is still being built, as soon as it is."""
        template = self.runtime.templates.get(self.selected_id) if self.selected_id else None
        inputs = list(self.query_one("#tpl-form").query(Input))
        names = [(i.id or "").removeprefix("tplvar-") for i in inputs]
        if template is None or names != list(template.variables):
            self._focus_form = True  # the form for this template is not there yet
            return
        self._focus_form = False
        empty = [i for i in inputs if not i.value.strip()]
        target = empty[0] if empty else inputs[0] if inputs else self.query_one("#tpl-use")
        target.focus()

    def select_template(self, template_id: str) -> bool:
        """Move the cursor to `template_id` (clearing a filter that hides it)."""
        tree: Tree[str] = self.query_one("#tpl-tree", Tree)
        for _ in range(2):
            for node in tree.root.children:
                for leaf in node.children:
                    if leaf.data == template_id:
                        tree.move_cursor(leaf)
                        self._select(template_id)
                        return True
            self.query_one("#tpl-filter", Input).value = ""
            self._fill_tree()
        return False

    def action_focus_filter(self) -> None:
        self.query_one("#tpl-filter", Input).focus()

    # ---- preview and form --------------------------------------------------------------------

    def _select(self, template_id: str | None) -> None:
        self.selected_id = template_id
        template = self.runtime.templates.get(template_id) if template_id else None
        heading = self.query_one("#tpl-heading", Static)
        preview = self.query_one("#tpl-preview-text", Static)
        self.query_one("#tpl-form-error", Static).update("")
        if template is None:
            heading.update("No template matches the filter.")
            preview.update("")
            self.call_later(self._build_form, None)
            return
        heading.update(f"{template.title}  ·  {template.id}  ·  {template.category}")
        parts: list[Content] = []
        if template.description:
            parts.append(Content.styled(template.description + "\n\n", "italic $text-muted"))
        parts.append(highlight_placeholders(template.prompt))
        if template.system:
            parts.append(Content.styled("\n\nSystem: ", "bold"))
            parts.append(highlight_placeholders(template.system))
        preview.update(Content.assemble(*parts))
        self.call_later(self._build_form, template)

    async def _build_form(self, template: Template | None) -> None:
        form = self.query_one("#tpl-form", VerticalScroll)
        await form.remove_children()
        if template is None:
            return
        rows = []
        for name in template.variables:
            rows.append(
                Horizontal(
                    Label(name, classes="tpl-var-name"),
                    Input(
                        template.defaults.get(name, ""),
                        placeholder=f"value for {name}",
                        id=f"tplvar-{name}",
                        compact=True,
                        classes="tpl-var-input",
                    ),
                    classes="tpl-var",
                )
            )
        if not rows:
            rows.append(Horizontal(Label("This template has no variables."), classes="tpl-var"))
        await form.mount_all(rows)
        if self._focus_form:
            self._focus_first_empty()

    def form_values(self) -> dict[str, str]:
        """Current variable values from the form, by name."""
        return {
            (i.id or "").removeprefix("tplvar-"): i.value
            for i in self.query_one("#tpl-form").query(Input)
        }

    @on(Input.Submitted, "#tpl-form Input")
    @on(Button.Pressed, "#tpl-use")
    def action_use(self) -> None:
        """Send the selected template with the form's values to the chat."""
        if self.selected_id is None:
            self.notify("Choose a template first.", severity="warning")
            return
        values = self.form_values()
        missing = missing_values(values)
        error = self.query_one("#tpl-form-error", Static)
        if missing:
            error.update(f"✗ Fill in: {', '.join(missing)}")
            self.query_one(f"#tplvar-{missing[0]}", Input).focus()
            return
        error.update("")
        template_id = self.selected_id
        try:
            rendered = self.runtime.templates.require(template_id).render(values)
        except RouterError as exc:
            error.update(f"✗ {exc}")
            return
        from .template_review import TemplateReviewModal

        def decided(answer: str | None) -> None:
            if answer == "send":
                self.post_message(TemplateChosen(template_id, values))
            elif answer == "edit":
                self.post_message(TemplateEdit(rendered.prompt, rendered.system))

        self.app.push_screen(
            TemplateReviewModal(template_id, rendered.prompt, rendered.system), decided
        )
