"""Knowledge base of Korean separate-disposal rules (our own data, see ``data/``).

Data files (UTF-8 JSON, validated on load; a broken entry raises ``KnowledgeDataError`` naming it):

- ``categories.json`` — every major category of DOMAIN.md with its middle categories: ordered
  disposal steps, what is not accepted, notes, per-category situation issues and redirects.
- ``items.json`` — named items (minor categories and everyday things) with aliases and typos;
  ``secondary`` marks parts and residues ("송장", "뚜껑") that lose to the item they belong to.
- ``tags.json`` — situation tags with Korean labels and the phrases that reveal them; a tag
  of a part's state names the part (``parts``): a text telling it, on or off, names the whole
  the state matters for ("소주병 뚜껑 뺐어요" is about the bottle, ``agents.knowledge.mentions``).
- ``characters.json`` — the 13 collectible characters (이코 is the default).
- ``guide/`` — the item-level guide (``guide_files``): step sets per item family with their
  sources, item facts (caveats, hazards, questions), condition rules and Seoul district notes.
  ``resolve`` applies it (``agents.knowledge.resolve``); ``wording`` writes the answer.

Decisions worth knowing:

- 전지 (batteries) and 조명제품 (lamps) are *recyclable* middle categories, as in DOMAIN.md's
  list of 12 (each rewards a character); their hazard shows as the ``hazardous`` tag and in the
  notes (dedicated bins only). 생활계유해폐기물 keeps what has no recycling route: 폐의약품,
  수은함유제품, 유해화학제품.
- Appliances of every size are 전기전자제품 (free pickup 1599-0903 named in the steps);
  대형폐기물 holds furniture and other bulky goods.
- A situation that the user can still fix (contaminated, contents left, label on a PET bottle)
  stays in the same category and becomes an insufficiency; a situation that changes what the
  item *is* (a broken glass bottle) redirects the classification (``adjust_for_tags``).
- A tag's effect depends on the category: a closed cap is right for 무색페트병 but an issue
  for 유리병. Default tags of an item never block its reward (checked at load).

API: ``KnowledgeBase.load(path=None)``, ``match``, ``situation_tags``, ``adjust_for_tags``,
``rule_for``, ``search``, ``categories``, ``characters``, ``character_for_middle``,
``default_character``, ``reward_for``, ``resolve`` (item-level answer facts); ``rule_for(c, text)``
carries them as ``DisposalRule.item_guide``; ``answer_for_scan`` writes the scan answer.
"""

from __future__ import annotations

from agents.knowledge.answer import (
    SCAN_CONTEXT_PREFIX,
    ScanContext,
    answer_for_scan,
    parse_scan_context,
    scan_context_message,
)
from agents.knowledge.base import KnowledgeBase
from agents.knowledge.errors import KnowledgeDataError, KnowledgeError
from agents.knowledge.models import (
    CategorySummary,
    DisposalRule,
    ItemMatch,
    KnownItem,
    RuleHit,
    SituationTag,
)

__all__ = [
    "SCAN_CONTEXT_PREFIX",
    "CategorySummary",
    "DisposalRule",
    "ItemMatch",
    "KnowledgeBase",
    "KnowledgeDataError",
    "KnowledgeError",
    "KnownItem",
    "RuleHit",
    "ScanContext",
    "SituationTag",
    "answer_for_scan",
    "parse_scan_context",
    "scan_context_message",
]
