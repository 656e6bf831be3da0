//! Diesel table definitions for `migrations/`. Written by hand (not by
//! `diesel print-schema`) because the one portable migration set maps to the
//! same types on SQLite and Postgres.

diesel::table! {
    providers (id) {
        id -> Text,
        name -> Text,
        kind -> Text,
        base_url -> Text,
        models -> Text,
        strategy -> Text,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
        model_map -> Text,
        health_interval_secs -> Integer,
        affinity -> Text,
    }
}

diesel::table! {
    provider_keys (id) {
        id -> Text,
        provider_id -> Text,
        name -> Text,
        secret_enc -> Text,
        secret_hint -> Text,
        weight -> Integer,
        position -> Integer,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
        oauth_template -> Text,
    }
}

diesel::table! {
    pricing (model) {
        model -> Text,
        input -> Double,
        output -> Double,
        cached_input -> Nullable<Double>,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    client_keys (id) {
        id -> Text,
        name -> Text,
        key_hash -> Text,
        key_hint -> Text,
        models -> Text,
        rpm -> Nullable<BigInt>,
        tokens_per_day -> Nullable<BigInt>,
        cost_per_day -> Nullable<Double>,
        expires_at_ms -> BigInt,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
        owner_user_id -> Nullable<Text>,
        revoked_at_ms -> BigInt,
        rps -> Nullable<BigInt>,
        tokens_per_minute -> Nullable<BigInt>,
        cost_per_month -> Nullable<Double>,
        concurrent -> Nullable<BigInt>,
        limits_global -> Bool,
        when_store_down -> Text,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        name -> Text,
        token_hash -> Text,
        role -> Text,
        created_at_ms -> BigInt,
        user_id -> Nullable<Text>,
        token_hint -> Text,
        expires_at_ms -> BigInt,
        revoked_at_ms -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        disabled -> Bool,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
        team_id -> Nullable<Text>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        token_hash -> Text,
        created_at_ms -> BigInt,
        expires_at_ms -> BigInt,
    }
}

diesel::table! {
    routes (model) {
        model -> Text,
        providers -> Text,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
        strict -> Bool,
        alias_of -> Text,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Text,
        at_ms -> BigInt,
        actor -> Text,
        actor_user_id -> Nullable<Text>,
        action -> Text,
        object_kind -> Text,
        object_name -> Text,
        detail -> Text,
    }
}

diesel::table! {
    traces (request_id) {
        request_id -> Text,
        started_at_ms -> BigInt,
        received_at_ms -> BigInt,
        client_key_id -> Text,
        client_key_name -> Text,
        model -> Text,
        provider -> Text,
        provider_key -> Text,
        status -> Integer,
        latency_us -> BigInt,
        ttfb_us -> BigInt,
        input_tokens -> BigInt,
        output_tokens -> BigInt,
        cached_tokens -> BigInt,
        reasoning_tokens -> BigInt,
        cost -> Double,
        region -> Text,
        node_id -> Text,
        stream -> Bool,
        endpoint -> Text,
        api_format -> Text,
        error -> Nullable<Text>,
        attempts -> Text,
        dropped_fields -> Text,
        usage_source -> Text,
        refused_by -> Text,
    }
}

diesel::table! {
    credential_health (provider, key_name) {
        provider -> Text,
        key_name -> Text,
        status -> Text,
        http_status -> Integer,
        latency_us -> BigInt,
        detail -> Text,
        checked_at_ms -> BigInt,
        retry_at_ms -> BigInt,
        trigger_kind -> Text,
    }
}

diesel::table! {
    credential_checks (id) {
        id -> Text,
        provider -> Text,
        key_name -> Text,
        status -> Text,
        http_status -> Integer,
        latency_us -> BigInt,
        detail -> Text,
        checked_at_ms -> BigInt,
        trigger_kind -> Text,
    }
}

diesel::table! {
    teams (id) {
        id -> Text,
        name -> Text,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    budgets (subject) {
        subject -> Text,
        rps -> Nullable<BigInt>,
        rpm -> Nullable<BigInt>,
        tokens_per_minute -> Nullable<BigInt>,
        tokens_per_day -> Nullable<BigInt>,
        cost_per_day -> Nullable<Double>,
        cost_per_month -> Nullable<Double>,
        concurrent -> Nullable<BigInt>,
        global -> Bool,
        when_store_down -> Text,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    budget_leases (budget, region, period) {
        budget -> Text,
        region -> Text,
        period -> Text,
        tokens -> Nullable<BigInt>,
        cost -> Nullable<Double>,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    budget_alerts (budget, period, threshold) {
        budget -> Text,
        period -> Text,
        threshold -> Integer,
        fired_at_ms -> BigInt,
        delivered_at_ms -> BigInt,
        attempts -> Integer,
        last_error -> Text,
        payload -> Text,
    }
}

diesel::table! {
    webhooks (name) {
        name -> Text,
        url -> Text,
        secret_enc -> Text,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    node_credentials (id) {
        id -> Text,
        node_id -> Text,
        region -> Text,
        token_hash -> Text,
        token_hint -> Text,
        created_at_ms -> BigInt,
        revoked_at_ms -> BigInt,
    }
}

diesel::table! {
    oauth_templates (name) {
        name -> Text,
        spec -> Text,
        client_secret_enc -> Text,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    oauth_accounts (provider, key_name) {
        provider -> Text,
        key_name -> Text,
        template -> Text,
        access_enc -> Text,
        refresh_enc -> Text,
        expires_at_ms -> BigInt,
        refresh_at_ms -> BigInt,
        claims -> Text,
        status -> Text,
        last_error -> Text,
        failures -> Integer,
        last_refresh_ms -> BigInt,
        connected_at_ms -> BigInt,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    oauth_flows (state_hash) {
        state_hash -> Text,
        provider -> Text,
        key_name -> Text,
        template -> Text,
        kind -> Text,
        secret_enc -> Text,
        redirect_uri -> Text,
        params -> Text,
        interval_secs -> Integer,
        next_poll_at_ms -> BigInt,
        expires_at_ms -> BigInt,
        created_at_ms -> BigInt,
    }
}

diesel::joinable!(provider_keys -> providers (provider_id));
diesel::allow_tables_to_appear_in_same_query!(providers, provider_keys);

diesel::table! {
    usage_rollups (level, span_ms, bucket_start_ms, client_key_id, provider, model, region) {
        level -> Integer,
        span_ms -> BigInt,
        bucket_start_ms -> BigInt,
        client_key_id -> Text,
        provider -> Text,
        model -> Text,
        region -> Text,
        client_key_name -> Text,
        requests -> BigInt,
        errors -> BigInt,
        input_tokens -> BigInt,
        output_tokens -> BigInt,
        cached_tokens -> BigInt,
        reasoning_tokens -> BigInt,
        cost -> Double,
        latency_hist -> Text,
        ttfb_hist -> Text,
        overhead_hist -> Text,
    }
}

diesel::table! {
    oidc_settings (id) {
        id -> Text,
        enabled -> Bool,
        issuer -> Text,
        client_id -> Text,
        client_secret_enc -> Text,
        default_role -> Text,
        redirect_url -> Text,
        display_name -> Text,
        scopes -> Text,
        updated_at_ms -> BigInt,
    }
}

diesel::table! {
    oidc_identities (subject) {
        subject -> Text,
        user_id -> Text,
        email -> Text,
        created_at_ms -> BigInt,
        last_login_ms -> BigInt,
    }
}
