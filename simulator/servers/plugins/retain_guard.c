/*
 * retain_guard: a Mosquitto 2.0 plugin (v5 API) that refuses a retained message on any topic that is
 * not retained by design.
 *
 * Why: Mosquitto's ACL file grants read and write per topic but cannot look at the retain flag, so a
 * machine allowed to publish its sales could leave a retained message on each of its topics, kept by
 * the broker across restarts and handed to every new subscriber. Only a machine's status (online,
 * offline, its Last Will) and its stock snapshot are retained by design (firmware/reporting), and the
 * issuer's lost-card list and each school's guardian controls, so a machine that connects gets the current
 * ones (firmware/reporting/hotlist.py, firmware/reporting/controls.py).
 *
 * How: Mosquitto asks the plugins' ACL callbacks before its own ACL file (src/security.c in 2.0.11);
 * this one denies a retained, non-empty publish (a PUBLISH or a Last Will) on any other topic and
 * defers everything else to the ACL file, which still decides who may write where. An empty retained
 * publish only clears a retained message, so it is allowed anywhere the ACL allows the writer.
 *
 * Built by `vending broker setup` with the system C compiler and Debian's mosquitto-dev headers.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

static mosquitto_plugin_id_t *plugin_id = NULL;

/* school/v1/<school>/controls, <school> one non-empty level */
static bool school_controls(const char *topic)
{
	static const char prefix[] = "school/v1/";
	const char *school;
	const char *slash;

	if(strncmp(topic, prefix, sizeof(prefix) - 1) != 0) return false;
	school = topic + sizeof(prefix) - 1;
	slash = strchr(school, '/');
	return slash != NULL && slash != school && strcmp(slash, "/controls") == 0;
}

/* vending/v1/<machine>/status or vending/v1/<machine>/stock, <machine> one non-empty level; issuer/v1/hotlist;
 * issuer/v1/credits; school/v1/<school>/controls */
static bool retained_by_design(const char *topic)
{
	static const char prefix[] = "vending/v1/";
	const char *machine;
	const char *slash;

	if(topic != NULL && strcmp(topic, "issuer/v1/hotlist") == 0) return true;
	if(topic != NULL && strcmp(topic, "issuer/v1/credits") == 0) return true;
	if(topic != NULL && school_controls(topic)) return true;
	if(topic == NULL || strncmp(topic, prefix, sizeof(prefix) - 1) != 0) return false;
	machine = topic + sizeof(prefix) - 1;
	slash = strchr(machine, '/');
	if(slash == NULL || slash == machine) return false;
	return strcmp(slash + 1, "status") == 0 || strcmp(slash + 1, "stock") == 0;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_acl_check *check = event_data;
	(void)event;
	(void)userdata;

	if(check->access == MOSQ_ACL_WRITE && check->retain && check->payloadlen > 0
			&& !retained_by_design(check->topic)){
		mosquitto_log_printf(MOSQ_LOG_WARNING, "retain_guard: refused a retained message from %s on %s",
				mosquitto_client_id(check->client), check->topic);
		return MOSQ_ERR_ACL_DENIED;
	}
	return MOSQ_ERR_PLUGIN_DEFER;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	(void)supported_version_count;
	(void)supported_versions;
	return 5;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data, struct mosquitto_opt *opts, int opt_count)
{
	(void)user_data;
	(void)opts;
	(void)opt_count;
	plugin_id = identifier;
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	(void)user_data;
	(void)opts;
	(void)opt_count;
	return mosquitto_callback_unregister(plugin_id, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
}
