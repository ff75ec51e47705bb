"""Validating the cleaned metadata with the Great Expectations provider's batch operator."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException
from great_expectations_provider.common.errors import GXValidationFailed
from great_expectations_provider.operators.validate_batch import GXValidateBatchOperator

from musicrec.airflow.tasks import said_plainly


class ValidateMetadata(GXValidateBatchOperator):
    """Validates the table that `clean_metadata` wrote against the project's suite.

    `cleaned` is clean_metadata's output (resolved at run time, not when the DAG is parsed). The full
    result and GX's data docs are saved in the run folder; a failure names each failed expectation with
    its column and example values. Returns what `join` needs: the validated table's path.
    """

    template_fields = (*GXValidateBatchOperator.template_fields, "cleaned")

    def __init__(self, *, cleaned, **kwargs):
        super().__init__(
            configure_batch_definition=self.batch_definition,
            configure_expectations=self.expectation_suite,
            result_format="SUMMARY",
            **kwargs,
        )
        self.cleaned = cleaned
        self.gx_context = None
        self.local_table = None  # the table on this worker's disk, where GX reads it

    def batch_definition(self, gx_context):
        from musicrec.library import expectations

        self.gx_context = gx_context  # kept for the data docs, built once the validation has run
        return expectations.batch_definition(gx_context, self.local_table)

    def expectation_suite(self, gx_context):
        from musicrec.library import expectations

        return expectations.suite()

    @said_plainly
    def execute(self, context) -> dict:
        from musicrec.library import expectations
        from musicrec.store import storage

        run = storage.path(self.cleaned["run_dir"])
        fingerprint = expectations.fingerprint(self.cleaned["path"])
        reused = self._reuse_last_result(run, fingerprint)
        if reused is not None:
            return reused
        # Airflow renders `cleaned` on the copy of the operator that runs: the callbacks must be this copy's.
        self.configure_batch_definition = self.batch_definition
        self.configure_expectations = self.expectation_suite
        try:
            with storage.local_copy(self.cleaned["path"]) as self.local_table:
                super().execute(context)
        except GXValidationFailed as failed:
            result = context["ti"].xcom_pull(task_ids=self.task_id) or {}
            storage.write_json(result, run / storage.VALIDATION)
            docs = self._data_docs(run)
            lines = "\n  ".join(expectations.failures(result)) or str(failed)
            # The same table fails the same way on every try: no retries (those are for a lost worker).
            raise AirflowFailException(
                f"cleaned metadata failed validation (full result: {run / storage.VALIDATION}, "
                f"data docs: {docs}):\n  {lines}"
            ) from None
        result = context["ti"].xcom_pull(task_ids=self.task_id)
        storage.write_json(result | {"musicrec_fingerprint": fingerprint}, run / storage.VALIDATION)
        docs = self._data_docs(run)
        return {
            "run_dir": str(run),
            "path": self.cleaned["path"],
            "validation": str(run / storage.VALIDATION),
            "data_docs": str(docs) if docs else None,
            "expectations": len(result.get("expectations", [])),
        }

    def _data_docs(self, run):
        """GX's data docs of this validation, in the run folder; None when GX could not build them."""
        from musicrec.library import expectations
        from musicrec.store import storage

        with storage.local_folder(run / storage.DATA_DOCS) as folder:
            built = expectations.build_data_docs(self.gx_context, folder)
        return run / storage.DATA_DOCS / "index.html" if built else None

    def _reuse_last_result(self, run, fingerprint: str) -> dict | None:
        """The last index's passing result, copied into this run, when it validated the very same table with
        the same suite: a nightly run over an unchanged library does not start Great Expectations."""
        import logging

        from musicrec.store import storage

        last = storage.current_dir(storage.data_dir_of(run))
        try:
            result = storage.read_json(last / storage.VALIDATION) if last else None
        except (OSError, ValueError):
            result = None
        if not result or not result.get("success") or result.get("musicrec_fingerprint") != fingerprint:
            return None
        storage.write_json(result, run / storage.VALIDATION)
        if (last / storage.DATA_DOCS).is_dir():
            storage.copy_tree(last / storage.DATA_DOCS, run / storage.DATA_DOCS)
        logging.getLogger("musicrec").info(
            "validate_metadata: the same table passed the same suite in run %s: its result is reused", last.name
        )
        docs = run / storage.DATA_DOCS / "index.html"
        return {
            "run_dir": str(run),
            "path": self.cleaned["path"],
            "validation": str(run / storage.VALIDATION),
            "data_docs": str(docs) if docs.exists() else None,
            "expectations": len(result.get("expectations", [])),
            "reused_from": last.name,
        }
