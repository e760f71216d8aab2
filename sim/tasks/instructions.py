"""The words of the language tasks: templated instructions and their fixed train / held-out split.

An instruction is a family (the skill: touch, lift, push, place), the colour of the cube it names, the
zone it names (push and place: by colour, "the blue zone", or by side, "the left zone") and one of the
family's phrasings. Every combination is an instruction; which ones a model may see in training is
fixed here, without randomness, so that an evaluation can ask for the others:

- the last phrasing of each family is held out (a sentence never seen in training);
- three cube-zone pairs per kind of zone reference are held out (a pair never seen in training, though
  both words are): each cube colour and each zone keep two training pairs.

An instruction is held out if its phrasing or its pair is (``Instruction.held_out_because`` says which).
Sides are the robot's: "left" is +y, the zone with the largest y; the zones stand in one row across
the table, so the exterior camera shows the left zone on the left too (sim/tasks/language.py).

    from sim.tasks.instructions import instructions, parse_instruction
    heldout = instructions("place", "heldout")      # a deterministic list
    parse_instruction("put the red cube in the blue zone").split   # "heldout" (a held-out pair)
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

CUBE_COLOURS = ("red", "green", "yellow")
ZONE_COLOURS = ("blue", "white", "purple")
ZONE_SIDES = ("left", "middle", "right")  # the robot's left (+y) to its right (-y)
ZONE_REFERENCES = ZONE_COLOURS + ZONE_SIDES

# Several phrasings per family; the last one is held out. {cube} is a colour, {zone} a colour or a side.
PHRASINGS = {
    "touch": (
        "touch the {cube} cube",
        "tap the {cube} cube",
        "reach out and touch the {cube} cube",
        "put a finger on the {cube} block",
    ),
    "lift": (
        "lift the {cube} cube",
        "pick up the {cube} cube",
        "raise the {cube} cube off the table",
        "grab the {cube} block and hold it up",
    ),
    "push": (
        "push the {cube} cube to the {zone} zone",
        "slide the {cube} cube into the {zone} zone",
        "push the {cube} cube into the {zone} square",
        "shove the {cube} block over to the {zone} zone",
    ),
    "place": (
        "put the {cube} cube in the {zone} zone",
        "place the {cube} cube on the {zone} zone",
        "pick up the {cube} cube and put it in the {zone} zone",
        "set the {cube} block down on the {zone} square",
    ),
}
FAMILIES = tuple(PHRASINGS)
ZONE_FAMILIES = ("push", "place")  # the families that name a zone
HELD_OUT_PHRASING = -1  # index into each family's phrasings
# A Latin-square diagonal per kind of reference: every colour and every zone keeps two training pairs.
HELD_OUT_PAIRS = frozenset(
    [("red", "blue"), ("green", "white"), ("yellow", "purple")]  # by colour
    + [("red", "right"), ("green", "left"), ("yellow", "middle")]  # by side
)
SPLITS = ("train", "heldout", "all")


@dataclass(frozen=True)
class Instruction:
    """One instruction: ``family``, the named cube's colour, the named zone (a colour or a side; "" for
    touch and lift) and the index of its phrasing in ``PHRASINGS[family]``."""

    family: str
    cube: str
    zone: str
    phrasing: int

    def __post_init__(self) -> None:
        if self.family not in PHRASINGS:
            raise ValueError(f"unknown instruction family {self.family!r}; choose one of {FAMILIES}")
        if self.cube not in CUBE_COLOURS:
            raise ValueError(f"unknown cube colour {self.cube!r}; choose one of {CUBE_COLOURS}")
        zones = ZONE_REFERENCES if self.family in ZONE_FAMILIES else ("",)
        if self.zone not in zones:
            raise ValueError(f"{self.family} instructions name the zone as one of {zones}, got {self.zone!r}")
        if not 0 <= self.phrasing < len(PHRASINGS[self.family]):
            raise ValueError(f"{self.family} has phrasings 0..{len(PHRASINGS[self.family]) - 1}, got {self.phrasing}")

    @property
    def text(self) -> str:
        return PHRASINGS[self.family][self.phrasing].format(cube=self.cube, zone=self.zone)

    @property
    def zone_by_side(self) -> bool:
        """Whether the zone is named by where it is ("the left zone") rather than by its colour."""
        return self.zone in ZONE_SIDES

    @property
    def held_out_because(self) -> tuple[str, ...]:
        """Why no training episode shows this instruction: "phrasing", "pair", both, or () (a training one)."""
        phrasings = len(PHRASINGS[self.family])
        reasons = ("phrasing",) if self.phrasing == HELD_OUT_PHRASING % phrasings else ()
        return reasons + (("pair",) if (self.cube, self.zone) in HELD_OUT_PAIRS else ())

    @property
    def split(self) -> str:
        """The split, "train" or "heldout": a pure function of the instruction (see the module docstring)."""
        return "heldout" if self.held_out_because else "train"


def instruction_split(instruction: Instruction | str) -> str:
    """The split ("train" or "heldout") of an instruction or of its text (a dataset's ``task`` field)."""
    if isinstance(instruction, str):
        instruction = parse_instruction(instruction)
    return instruction.split


@cache
def _all_instructions(family: str) -> tuple[Instruction, ...]:
    zones = ZONE_REFERENCES if family in ZONE_FAMILIES else ("",)
    return tuple(
        Instruction(family, cube, zone, phrasing)
        for cube, zone, phrasing in itertools.product(CUBE_COLOURS, zones, range(len(PHRASINGS[family])))
    )


def instructions(family: str, split: str = "all") -> list[Instruction]:
    """Every instruction of ``family`` in ``split`` ("train", "heldout" or "all"), in a fixed order."""
    if family not in PHRASINGS:
        raise ValueError(f"unknown instruction family {family!r}; choose one of {FAMILIES}")
    if split not in SPLITS:
        raise ValueError(f"unknown instruction split {split!r}; choose one of {SPLITS}")
    return [i for i in _all_instructions(family) if split in ("all", i.split)]


@cache
def _by_text() -> dict[str, Instruction]:
    return {i.text: i for family in FAMILIES for i in _all_instructions(family)}


def parse_instruction(text: str) -> Instruction:
    """The instruction whose text is ``text`` (every instruction's text is unique); ValueError otherwise."""
    found = _by_text().get(text.strip().lower())
    if found is None:
        raise ValueError(f"{text!r} is none of the language tasks' instructions (sim/tasks/instructions.py)")
    return found
