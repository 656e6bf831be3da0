-- Per-route options for clients whose fields a provider's format lacks, and
-- the fields the data plane dropped when translating a request.

-- Refuse such fields instead of dropping hints and bookkeeping (0/1).
ALTER TABLE routes ADD COLUMN strict BOOLEAN NOT NULL DEFAULT FALSE;
-- An alias: the route's models are served as this model; '' for none.
ALTER TABLE routes ADD COLUMN alias_of TEXT NOT NULL DEFAULT '';
-- JSON array of the generalized paths of the dropped fields.
ALTER TABLE traces ADD COLUMN dropped_fields TEXT NOT NULL DEFAULT '[]';
