from uuid import UUID

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from collect.datasets import NAME_MAX_CHARS
from collect.datasets.models import Dataset, Segment
from collect.errors import InvalidInput
from collect.timestamps import moment_iso


def dataset_check_name(name: str) -> None:
    """Refuse a dataset name the database could not store or that names nothing."""
    if not name or not name.strip():
        raise InvalidInput("a dataset name must not be empty")
    if len(name) > NAME_MAX_CHARS:
        raise InvalidInput(f"a dataset name has at most {NAME_MAX_CHARS} characters")
    if any(ord(character) < 32 for character in name):
        raise InvalidInput("a dataset name must not hold control characters (NUL, newline, …)")


def dataset_for_import(*, owner: User, name: str, columns: list[str]) -> Dataset:
    """The owner's dataset `name`, created with these columns if new; a file whose header
    differs from an existing dataset's columns is refused."""
    dataset_check_name(name)
    try:
        with transaction.atomic():
            dataset, _ = Dataset.objects.get_or_create(
                owner=owner, name=name, defaults={"columns": columns}
            )
    except IntegrityError:  # created by a concurrent upload a moment ago
        dataset = Dataset.objects.get(owner=owner, name=name)
    _check_columns(dataset, columns)
    return dataset


def dataset_check_columns(*, owner: User, name: str, columns: list[str]) -> None:
    """Refuse, as an import would, a header that differs from an existing dataset's."""
    dataset_check_name(name)
    dataset = Dataset.objects.filter(owner=owner, name=name).first()
    if dataset is not None:
        _check_columns(dataset, columns)


def _check_columns(dataset: Dataset, columns: list[str]) -> None:
    if dataset.columns == columns:
        return
    missing = [name for name in dataset.columns if name not in columns]
    extra = [name for name in columns if name not in dataset.columns]
    differences = []
    if missing:
        differences.append(f"it lacks {names_in_words(missing, conjunction='and')}")
    if extra:
        differences.append(
            f"it has {names_in_words(extra, conjunction='and')}, which the dataset has not"
        )
    if not differences:
        differences.append(
            f"its columns are in another order: {names_in_words(columns, conjunction='and')}"
            f" instead of {names_in_words(dataset.columns, conjunction='and')}"
        )
    raise InvalidInput(
        f"the file's header does not match the columns of dataset {dataset.name!r}: "
        f"{'; '.join(differences)}. Upload it into another dataset (a new name makes one)",
        expected=dataset.columns,
        found=columns,
    )


def names_in_words(names: list[str], *, conjunction: str = "or", most: int = 8) -> str:
    """Column names for a sentence: each quoted, at most `most` of them, as a person would
    write them (`"a", "b" and "c"`), not as a Python list."""
    quoted = [f'"{name}"' for name in names[:most]]
    if len(names) > most:
        quoted.append(f"{len(names) - most} more")
    if len(quoted) == 1:
        return quoted[0]
    return f"{', '.join(quoted[:-1])} {conjunction} {quoted[-1]}"


def segment_catalog(
    *,
    dataset_id: int,
    job_id: UUID,
    table: str,
    width: int,
    rows: int,
    last_line: int,
    timestamp_index: int | None,
    default_timestamp: int,
    days: tuple[str | None, str | None],
    formula_columns: list[int] | None = None,
) -> Segment:
    """Enter a completed import's segment in its dataset's catalog; call it in the
    transaction that completes the import, so the two are seen together."""
    first_day, last_day = days
    if timestamp_index is None:  # every row has the default timestamp
        first_day = last_day = moment_iso(default_timestamp)[:10]
    return Segment.objects.create(
        dataset_id=dataset_id,
        job_id=job_id,
        table=table,
        width=width,
        timestamp_index=timestamp_index,
        default_timestamp=default_timestamp,
        rows=rows,
        last_line=last_line,
        first_day=first_day or "",
        last_day=last_day or "",
        formula_columns=formula_columns,
    )
