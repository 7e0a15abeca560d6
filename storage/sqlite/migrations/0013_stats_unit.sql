-- A unit's statistics (what staff ask for) walk only that unit's entries: cases_stats
-- (0010) leads with the grouping, so a unit's query read every unit's entries and
-- checked unit_id on each, costing the same at 1,000 cases in the unit as at 200,000.
-- This index is cases_stats with unit_id first: unit_id = ? seeks to the unit's slice,
-- which is still in the grouping's order. cases_stats stays for the all-units query.
CREATE INDEX cases_stats_unit ON cases (unit_id, category, county, status, received_month, real_name,
	acceptance_due, accepted_on, feedback_due, feedback_on, received_at);
