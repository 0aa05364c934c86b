-- Wake the long-polls on an agency's queue (GET /api/v1/tickets with If-None-Match
-- and wait; the desk's "new tickets" notice) when one of its tickets is created or
-- changes. NOTIFY is delivered at commit, and pg_notify folds repeats of the same
-- agency within one transaction, so a routing chunk wakes each agency once.
CREATE FUNCTION tickets_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.agency IS NOT NULL THEN
        PERFORM pg_notify('router_queue', NEW.agency);
    END IF;
    -- A transfer changes the queue it leaves too.
    IF TG_OP = 'UPDATE' AND OLD.agency IS NOT NULL AND OLD.agency IS DISTINCT FROM NEW.agency THEN
        PERFORM pg_notify('router_queue', OLD.agency);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER tickets_notify AFTER INSERT OR UPDATE ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_notify();
