"""Every error q2-mgm raises, with what stands behind its advice (issue 19 item 3), one table per area of the
plugin so that each stays beside the code it covers. tests/test_fix_advice.py walks every `raise` of the plugin and
fails where a raise has no entry here, where an entry matches no raise, or where a named test does not exist.

An entry maps (module, function, the message's first words as written, `{}` for each interpolated value) to one of:
- the test that applies the fix the message names ("tests/test_x.py::test_y" or "...::TestClass::test_y"): the
  test provokes the error through the action (or the format) a user meets, applies the advice, and the action then
  succeeds;
- GUARDED: the registration's Range or Choices refuses the value before the action runs, so the user sees the
  registration's own message (test_fix_advice checks the claim where it lists the guard);
- NotInput(why): no input of any action reaches the raise, because a check named in `why` stops such input first,
  or the raise guards the library's own use (a caller of the core functions, not a user of the actions)."""
import dataclasses
import importlib

GUARDED = "refused first by the registration's Range/Choices"


@dataclasses.dataclass(frozen=True)
class NotInput:
    why: str


# area -> its table; each area module holds MODULES (the plugin's files it covers) and ADVICE
AREAS = ("metadata", "formats", "models", "forest_training", "cross_study", "keystone", "pretraining_generation",
         "realism_reconstruction")


def tables():
    """{area: (MODULES, ADVICE)} of every area."""
    out = {}
    for area in AREAS:
        module = importlib.import_module(f"{__name__}.{area}")
        out[area] = (tuple(module.MODULES), dict(module.ADVICE))
    return out
