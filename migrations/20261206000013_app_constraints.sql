-- An app's Swarm placement constraints (`paas apps:constraints:set`), as a
-- JSON list of `node.labels.pool==web`; NULL: none of its own.
ALTER TABLE apps ADD COLUMN constraints TEXT;
