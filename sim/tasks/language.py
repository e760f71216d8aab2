"""The scene of the language tasks: two or three coloured cubes, two or three coloured zones, and an
instruction that says which cube (and which zone) the episode is about.

Each episode first draws its instruction (sim/tasks/instructions.py) from the env's split of them
(``instructions="train"``, the default; ``"heldout"`` or ``"all"``), then a scene in which it makes
sense: the named cube and one or two others of the other colours, the named zone (by colour, or by
side: "middle" asks for three zones) and one or two more, and the existing distractors (small blue
cube, yellow bowl) in their corners. Where things go (m, robot base frame):

- zones in one row across the table, near the robot (x 0.40-0.46, centres >= 13 cm apart in y within
  +-0.19 m): the robot's left (+y) is then also the left of the exterior camera's image, so "the left
  zone" is the same zone in the robot's frame and in the picture;
- cubes behind them (x 0.51-0.61, y +-0.15), >= 11 cm apart, >= 10 cm from every zone centre (no
  cube stands in a zone) and clear of the distractors, so a grasp's open fingers touch only the named cube;
- push: the named cube 10-22 cm from the named zone, and the hand's start behind it and the line it
  pushes along clear of the other cubes, so a push moves only the named cube.

The families reuse the single-cube tasks (sim/tasks/lang_tasks.py): ``target_cube`` is the named cube's
body, ``zone`` the named zone's centre, and the classic task's goal, sub-goals and success follow.
``info`` says what the episode is about and what moved: ``instruction``, ``instruction_split``,
``target_object`` (body: the red cube is scene.xml's ``cube``, then ``green_cube``, ``yellow_cube``),
``target_colour``, ``target_zone`` (a body, "" without a zone), ``moved_objects`` (cubes now >= 2 cm
from where they started), ``wrong_object_moved`` and ``touched_objects`` (cubes a finger touches now),
``words_in_scene`` (the words that name something on the table: the cubes' and zones' colours and the
zones' sides; ``jepa-mpc collect`` records them, so a model can learn which instructions fit a scene).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.scene import CUBE_HALF_SIZE, OBJECTS
from sim.tasks.instructions import (
    CUBE_COLOURS,
    SPLITS,
    ZONE_COLOURS,
    ZONE_SIDES,
    Instruction,
    instructions,
    parse_instruction,
)
from sim.tasks.layout import MAX_CUBE_YAW, place_distractors
from sim.tasks.push import CONTACT_OFFSET, START_BACKOFF

CUBE_BODIES = {"red": "cube", "green": "green_cube", "yellow": "yellow_cube"}  # scene_lang.xml
ZONE_BODIES = {colour: f"{colour}_zone" for colour in ZONE_COLOURS}
LANGUAGE_OBJECTS = OBJECTS + ("green_cube", "yellow_cube")
FINGER_GEOMS = ("left_finger", "left_pad", "right_finger", "right_pad")

ZONE_ROW_X = (0.40, 0.46)
ZONE_Y = (-0.19, 0.19)
ZONE_GAP = 0.13  # m, least y distance between zone centres: which is left stays clear
CUBE_AREA = (np.array([0.50, -0.17]), np.array([0.62, 0.17]))
CUBE_GAP = 0.11  # m between cube centres: the open fingers around one cube miss the others
ZONE_CLEARANCE = 0.10  # m, cube centre to any zone centre: zones start empty
# Distractor centre to cube centre: the bowl (12 cm, turned) and small cube plus a cube and open fingers.
DISTRACTOR_CLEARANCE = {"bowl": 0.14, "small_cube": 0.10}
PUSH_DISTANCE = (0.10, 0.22)  # m, named cube to named zone in the push family
PUSH_LANE = 0.085  # m, other cubes' centres to the pushed cube's path (from the hand's start to the zone)
MOVED_DISTANCE = 0.02  # m a cube must be from its start to count as moved
PARKED = np.array([0.35, 0.0, -0.72])  # under the table top, out of both cameras' sight


@dataclass
class Layout:
    """Where the episode's objects go: cube colour -> xy [2] and yaw, zone colour -> xy [2], the named zone."""

    cubes: dict[str, np.ndarray]
    yaws: dict[str, float]
    zones: dict[str, np.ndarray]
    named_zone: str  # the colour of the zone the instruction names; "" if it names none

    def object_words(self) -> tuple[str, ...]:
        """The words that name something in this scene: cube and zone colours, and the sides the zone row has
        (right and left; middle with three zones), sorted."""
        sides = ZONE_SIDES if len(self.zones) == 3 else ("left", "right")
        return tuple(sorted({*self.cubes, *self.zones, *sides}))


def _zone_row(rng: np.random.Generator, count: int) -> np.ndarray:
    """``count`` zone centres [count, 2], sorted by y (right to left), >= ZONE_GAP apart in y: uniform
    over such rows (sorted uniforms in the slack, then the gaps added)."""
    slack = ZONE_Y[1] - ZONE_Y[0] - (count - 1) * ZONE_GAP
    ys = ZONE_Y[0] + np.sort(rng.uniform(0.0, slack, count)) + ZONE_GAP * np.arange(count)
    return np.stack([rng.uniform(*ZONE_ROW_X, count), ys], axis=1)


def _segment_distance(point: np.ndarray, start: np.ndarray, end: np.ndarray) -> float:
    along = end - start
    t = np.clip((point - start) @ along / (along @ along), 0.0, 1.0)
    return float(np.linalg.norm(point - (start + t * along)))


def _push_is_clear(cube: np.ndarray, zone: np.ndarray, others: list[np.ndarray]) -> bool:
    distance = np.linalg.norm(zone - cube)
    if not PUSH_DISTANCE[0] <= distance <= PUSH_DISTANCE[1]:
        return False
    start = cube - (CONTACT_OFFSET + START_BACKOFF) * (zone - cube) / distance  # where the hand comes down
    return all(_segment_distance(other, start, zone) >= PUSH_LANE for other in others)


def sample_layout(
    rng: np.random.Generator, instruction: Instruction, distractors: dict[str, np.ndarray], tries: int = 200
) -> Layout:
    """A scene for ``instruction`` (see the module docstring), drawn from ``rng``; ``distractors``: name ->
    xy of the distractors already placed. RuntimeError if ``tries`` draws found no room for the cubes."""
    others = [c for c in CUBE_COLOURS if c != instruction.cube]
    for _ in range(tries):  # the counts too are drawn again: a tight corner may leave room for fewer objects only
        cube_colours = [instruction.cube] + [others[i] for i in rng.permutation(len(others))[: rng.integers(1, 3)]]
        zone_count = 3 if instruction.zone == "middle" else int(rng.integers(2, 4))
        if instruction.zone in ZONE_COLOURS:
            rest = [c for c in ZONE_COLOURS if c != instruction.zone]
            zone_colours = [instruction.zone] + [rest[i] for i in rng.permutation(len(rest))[: zone_count - 1]]
        else:
            zone_colours = [ZONE_COLOURS[i] for i in rng.permutation(len(ZONE_COLOURS))[:zone_count]]
        row = _zone_row(rng, zone_count)  # right to left
        slots = [int(slot) for slot in rng.permutation(zone_count)]  # zone_colours[i] goes to row[slots[i]]
        zones = {colour: row[slot] for colour, slot in zip(zone_colours, slots)}
        named_zone = instruction.zone if instruction.zone in ZONE_COLOURS else ""
        if instruction.zone in ZONE_SIDES:
            side_slot = {"right": 0, "middle": 1, "left": zone_count - 1}[instruction.zone]
            named_zone = zone_colours[slots.index(side_slot)]
        # In a random order: the named cube is not the one placed first (where it would be drawn from another
        # distribution than the others, a hint that is not in the words).
        placing = [cube_colours[i] for i in rng.permutation(len(cube_colours))]
        cubes = _place_cubes(rng, placing, list(zones.values()), distractors)
        if cubes is None:
            continue
        if instruction.family == "push":
            rest_xy = [xy for colour, xy in cubes.items() if colour != instruction.cube]
            if not _push_is_clear(cubes[instruction.cube], zones[named_zone], rest_xy):
                continue
        yaws = {colour: float(rng.uniform(-MAX_CUBE_YAW, MAX_CUBE_YAW)) for colour in cube_colours}
        return Layout(cubes, yaws, zones, named_zone)
    raise RuntimeError(f"found no room for the scene of {instruction.text!r} in {tries} tries")


def _place_cubes(
    rng: np.random.Generator, colours: list[str], zones: list[np.ndarray], distractors: dict[str, np.ndarray]
) -> dict[str, np.ndarray] | None:
    """Cube colour -> xy, each clear of the zones, the distractors and the cubes before it; None if one found
    no room in 30 draws."""
    cubes: dict[str, np.ndarray] = {}
    for colour in colours:
        for _ in range(30):
            xy = rng.uniform(*CUBE_AREA)
            if (
                all(np.linalg.norm(xy - other) >= CUBE_GAP for other in cubes.values())
                and all(np.linalg.norm(xy - zone) >= ZONE_CLEARANCE for zone in zones)
                and all(np.linalg.norm(xy - at) >= DISTRACTOR_CLEARANCE[name] for name, at in distractors.items())
            ):
                cubes[colour] = xy
                break
        else:
            return None
    return cubes


class LanguageTask:
    """Mixin of the language tasks, before a ``FrankaTaskEnv`` task class in the bases: the coloured scene,
    the episode's instruction and the ``info`` entries above. ``family`` names the instruction family.

    ``gymnasium.make(id, config=..., instructions="heldout")`` draws from another split;
    ``reset(options={"instruction": text or Instruction})`` asks for one instruction of the family (the
    scene is still drawn from the seed)."""

    family = ""
    scene_file = "scene_lang.xml"
    scene_objects = LANGUAGE_OBJECTS

    def __init__(self, config=None, render_mode=None, instructions: str = "train"):
        if instructions not in SPLITS:
            raise ValueError(f"instructions must be one of {SPLITS}, got {instructions!r}")
        super().__init__(config, render_mode)
        self.instructions = instructions
        self.chosen: Instruction | None = None  # this episode's instruction
        self.instruction = ""
        self.zone = np.zeros(2)  # the named zone's centre (push, place)
        self.target_zone = ""  # its body
        self.cube_start = np.zeros(3)  # the named cube's start
        self.cube_starts: dict[str, np.ndarray] = {}  # body -> start position [3], the cubes in the scene
        self._requested: Instruction | None = None
        self._finger_geoms = {self.model.geom(name).id for name in FINGER_GEOMS}
        self._cube_geoms = {self.model.geom(body).id: body for body in CUBE_BODIES.values()}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        requested = (options or {}).get("instruction")
        self._requested = self._checked(requested) if requested is not None else None
        return super().reset(seed=seed, options=options)

    def _checked(self, requested) -> Instruction:
        instruction = parse_instruction(requested) if isinstance(requested, str) else requested
        if not isinstance(instruction, Instruction) or instruction.family != self.family:
            raise ValueError(f"options['instruction'] must be a {self.family} instruction, got {requested!r}")
        return instruction

    def _sample_task(self) -> None:
        rng = self.np_random
        choices = instructions(self.family, self.instructions)
        drawn = choices[int(rng.integers(len(choices)))]  # drawn also when one is requested: the same scenes
        self.chosen = self._requested or drawn
        self.instruction = self.chosen.text
        place_distractors(self.scene, rng)
        self.scene.place_zone(np.array([0.5, 0.0]), visible=False)  # scene.xml's green zone is not used
        distractors = {name: self.scene.placed_position(name)[:2] for name in DISTRACTOR_CLEARANCE}
        layout = sample_layout(rng, self.chosen, distractors)
        self.words_in_scene = layout.object_words()
        self.cube_starts = {}
        for index, (colour, body) in enumerate(CUBE_BODIES.items()):
            if colour in layout.cubes:
                position = np.array([*layout.cubes[colour], CUBE_HALF_SIZE])
                self.scene.place_object(body, position, yaw=layout.yaws[colour])
                self.cube_starts[body] = position
            else:
                self.scene.place_object(body, PARKED + [0.0, 0.12 * index, 0.0])
        for index, (colour, body) in enumerate(ZONE_BODIES.items()):
            mocap = self.model.body(body).mocapid[0]
            xy = layout.zones.get(colour)
            self.data.mocap_pos[mocap] = [*xy, 0.0] if xy is not None else PARKED + [0.0, 0.12 * index, -0.03]
        self.target_cube = CUBE_BODIES[self.chosen.cube]
        self.cube_start = self.cube_starts[self.target_cube].copy()
        self.target_zone = ZONE_BODIES[layout.named_zone] if layout.named_zone else ""
        self.zone = layout.zones[layout.named_zone].copy() if layout.named_zone else np.zeros(2)

    def touched_objects(self) -> tuple[str, ...]:
        """The cubes (bodies) a finger touches now."""
        touched = set()
        for contact in self.data.contact[: self.data.ncon]:
            for finger, other in ((contact.geom1, contact.geom2), (contact.geom2, contact.geom1)):
                if finger in self._finger_geoms and other in self._cube_geoms:
                    touched.add(self._cube_geoms[other])
        return tuple(sorted(touched))

    def moved_objects(self) -> tuple[str, ...]:
        """The cubes (bodies) now at least MOVED_DISTANCE from where the episode put them."""
        return tuple(
            sorted(
                body
                for body, start in self.cube_starts.items()
                if np.linalg.norm(self.scene.object_position(body) - start) >= MOVED_DISTANCE
            )
        )

    def _info(self) -> dict:
        info = super()._info()
        moved = self.moved_objects()
        info.update(
            instruction=self.instruction,
            instruction_split=self.chosen.split,
            target_object=self.target_cube,
            target_colour=self.chosen.cube,
            target_zone=self.target_zone,
            moved_objects=moved,
            wrong_object_moved=any(body != self.target_cube for body in moved),
            touched_objects=self.touched_objects(),
            words_in_scene=self.words_in_scene,
        )
        return info
